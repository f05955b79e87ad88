/*
 * Operator library for a tiny image classifier, written against the packed-function ABI that the
 * TVM 0.7/0.8 runtime inside dlr==1.6.0's libdlr.so expects from a Neo-compiled `compiled.so`.
 *
 * How the runtime uses this file once it is built into `compiled.so`:
 *   - `Module::LoadFromFile` dlopen()s it and looks up, by dlsym, the optional globals
 *     `__tvm_module_ctx` (it stores its module pointer there) and the function-pointer variables
 *     `__TVMAPISetLastError`, `__TVMFuncCall`, ... (it stores its own functions there).
 *     `__tvm_dev_mblob` is absent, so the library itself is the module.
 *   - The graph runtime resolves each `tvm_op` node's `attrs.func_name` by dlsym and calls it as
 *     int f(TVMValue* args, int* type_codes, int num_args,
 *           TVMValue* out_ret_value, int* out_ret_tcode, void* resource_handle)
 *     with one DLTensor* per node input followed by one per node output (type code
 *     kTVMDLTensorHandle). A non-zero return is an error whose message the runtime reads back
 *     through TVMGetLastError(), i.e. whatever we passed to __TVMAPISetLastError.
 *   - Operators never write out_ret_value/out_ret_tcode: older runtimes call with three arguments.
 *
 * The numbers this computes are mirrored exactly by TinyClassifier.predict (neo_model.py).
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define EXPORT __attribute__((visibility("default")))

/* ---- The parts of dlpack.h / c_runtime_api.h that this ABI uses (layouts are fixed). ---- */
typedef struct {
  int32_t device_type; /* kDLCPU == 1 */
  int32_t device_id;
} DLDevice;

typedef struct {
  uint8_t code; /* kDLFloat == 2 */
  uint8_t bits;
  uint16_t lanes;
} DLDataType;

typedef struct {
  void* data;
  DLDevice device;
  int32_t ndim;
  DLDataType dtype;
  int64_t* shape;
  int64_t* strides; /* NULL: compact row-major */
  uint64_t byte_offset;
} DLTensor;

typedef union {
  int64_t v_int64;
  double v_float64;
  void* v_handle;
  const char* v_str;
  DLDataType v_type;
  DLDevice v_device;
} TVMValue;

enum { kTVMDLTensorHandle = 7, kTVMNDArrayHandle = 13 };
enum { kDLCPU = 1, kDLFloat = 2 };

/* ---- Symbols the runtime fills in when it loads the library. ---- */
EXPORT void* __tvm_module_ctx = NULL;
EXPORT void (*__TVMAPISetLastError)(const char*) = NULL;

static int fail(const char* op, const char* what) {
  char msg[256];
  snprintf(msg, sizeof(msg), "%s: %s", op, what);
  if (__TVMAPISetLastError != NULL) __TVMAPISetLastError(msg);
  return -1;
}

/* Fetch argument i as a compact float32 CPU tensor of rank ndim, or NULL. */
static DLTensor* tensor_arg(const TVMValue* args, const int* type_codes, int i, int ndim) {
  if (type_codes[i] != kTVMDLTensorHandle && type_codes[i] != kTVMNDArrayHandle) return NULL;
  DLTensor* t = (DLTensor*)args[i].v_handle;
  if (t == NULL || t->data == NULL || t->ndim != ndim || t->strides != NULL) return NULL;
  if (t->device.device_type != kDLCPU) return NULL;
  if (t->dtype.code != kDLFloat || t->dtype.bits != 32 || t->dtype.lanes != 1) return NULL;
  return t;
}

static float* fdata(const DLTensor* t) { return (float*)((char*)t->data + t->byte_offset); }

#define GRID 4

/*
 * Adaptive average pooling of (1, C, H, W) to (1, C, 4, 4), PyTorch's definition: output cell
 * (i, j) averages rows [floor(i*H/4), ceil((i+1)*H/4)) and columns [floor(j*W/4), ceil((j+1)*W/4)).
 * Needs H, W >= 1; windows overlap when H or W is not a multiple of 4.
 */
EXPORT int tiny_adaptive_avg_pool2d_4x4(TVMValue* args, int* type_codes, int num_args,
                                        TVMValue* out_ret_value, int* out_ret_tcode,
                                        void* resource_handle) {
  static const char op[] = "tiny_adaptive_avg_pool2d_4x4";
  (void)out_ret_value, (void)out_ret_tcode, (void)resource_handle;
  if (num_args != 2) return fail(op, "expects 2 arguments (data, out)");
  DLTensor* x = tensor_arg(args, type_codes, 0, 4);
  DLTensor* y = tensor_arg(args, type_codes, 1, 4);
  if (x == NULL || y == NULL) return fail(op, "arguments must be 4-d float32 CPU tensors");
  const int64_t n = x->shape[0], c = x->shape[1], h = x->shape[2], w = x->shape[3];
  if (n != 1 || h < 1 || w < 1 || y->shape[0] != 1 || y->shape[1] != c || y->shape[2] != GRID ||
      y->shape[3] != GRID)
    return fail(op, "shape mismatch: want (1,C,H,W) -> (1,C,4,4)");
  const float* src = fdata(x);
  float* dst = fdata(y);
  for (int64_t ch = 0; ch < c; ++ch) {
    const float* plane = src + ch * h * w;
    for (int64_t i = 0; i < GRID; ++i) {
      const int64_t r0 = (i * h) / GRID, r1 = ((i + 1) * h + GRID - 1) / GRID;
      for (int64_t j = 0; j < GRID; ++j) {
        const int64_t c0 = (j * w) / GRID, c1 = ((j + 1) * w + GRID - 1) / GRID;
        double acc = 0.0;
        for (int64_t r = r0; r < r1; ++r)
          for (int64_t q = c0; q < c1; ++q) acc += plane[r * w + q];
        dst[(ch * GRID + i) * GRID + j] = (float)(acc / (double)((r1 - r0) * (c1 - c0)));
      }
    }
  }
  return 0;
}

/* (1, C, 4, 4) -> (1, C*16), row-major order. */
EXPORT int tiny_flatten(TVMValue* args, int* type_codes, int num_args, TVMValue* out_ret_value,
                        int* out_ret_tcode, void* resource_handle) {
  static const char op[] = "tiny_flatten";
  (void)out_ret_value, (void)out_ret_tcode, (void)resource_handle;
  if (num_args != 2) return fail(op, "expects 2 arguments (data, out)");
  DLTensor* x = tensor_arg(args, type_codes, 0, 4);
  DLTensor* y = tensor_arg(args, type_codes, 1, 2);
  if (x == NULL || y == NULL) return fail(op, "want a 4-d input and a 2-d output, float32 CPU");
  const int64_t count = x->shape[1] * x->shape[2] * x->shape[3];
  if (x->shape[0] != 1 || y->shape[0] != 1 || y->shape[1] != count)
    return fail(op, "shape mismatch: want (1,C,H,W) -> (1,C*H*W)");
  memmove(fdata(y), fdata(x), (size_t)count * sizeof(float));
  return 0;
}

/* y = x . W^T + b with x (1, F), W (K, F), b (K,), y (1, K); accumulates in double. */
EXPORT int tiny_dense_bias(TVMValue* args, int* type_codes, int num_args, TVMValue* out_ret_value,
                           int* out_ret_tcode, void* resource_handle) {
  static const char op[] = "tiny_dense_bias";
  (void)out_ret_value, (void)out_ret_tcode, (void)resource_handle;
  if (num_args != 4) return fail(op, "expects 4 arguments (data, weight, bias, out)");
  DLTensor* x = tensor_arg(args, type_codes, 0, 2);
  DLTensor* wt = tensor_arg(args, type_codes, 1, 2);
  DLTensor* b = tensor_arg(args, type_codes, 2, 1);
  DLTensor* y = tensor_arg(args, type_codes, 3, 2);
  if (x == NULL || wt == NULL || b == NULL || y == NULL)
    return fail(op, "arguments must be float32 CPU tensors of rank 2, 2, 1, 2");
  const int64_t f = x->shape[1], k = wt->shape[0];
  if (x->shape[0] != 1 || wt->shape[1] != f || b->shape[0] != k || y->shape[0] != 1 ||
      y->shape[1] != k)
    return fail(op, "shape mismatch: want (1,F) x (K,F)^T + (K,) -> (1,K)");
  const float *xs = fdata(x), *ws = fdata(wt), *bs = fdata(b);
  float* ys = fdata(y);
  for (int64_t o = 0; o < k; ++o) {
    double acc = (double)bs[o];
    for (int64_t i = 0; i < f; ++i) acc += (double)xs[i] * (double)ws[o * f + i];
    ys[o] = (float)acc;
  }
  return 0;
}

/* Softmax over the last axis of (1, K): exp(x - max) / sum, computed in double. */
EXPORT int tiny_softmax(TVMValue* args, int* type_codes, int num_args, TVMValue* out_ret_value,
                        int* out_ret_tcode, void* resource_handle) {
  static const char op[] = "tiny_softmax";
  (void)out_ret_value, (void)out_ret_tcode, (void)resource_handle;
  if (num_args != 2) return fail(op, "expects 2 arguments (data, out)");
  DLTensor* x = tensor_arg(args, type_codes, 0, 2);
  DLTensor* y = tensor_arg(args, type_codes, 1, 2);
  if (x == NULL || y == NULL) return fail(op, "arguments must be 2-d float32 CPU tensors");
  const int64_t k = x->shape[1];
  if (x->shape[0] != 1 || k < 1 || y->shape[0] != 1 || y->shape[1] != k)
    return fail(op, "shape mismatch: want (1,K) -> (1,K)");
  const float* xs = fdata(x);
  float* ys = fdata(y);
  double mx = xs[0], sum = 0.0;
  for (int64_t i = 1; i < k; ++i)
    if (xs[i] > mx) mx = xs[i];
  for (int64_t i = 0; i < k; ++i) sum += exp((double)xs[i] - mx);
  for (int64_t i = 0; i < k; ++i) ys[i] = (float)(exp((double)xs[i] - mx) / sum);
  return 0;
}
