"""Components run as the installer's ggc_user:ggc_group, with the owners and modes a root
nucleus sets (device_sim/run_with.py, device_sim/download.py, device_sim/lifecycle.py).

The tests that switch users need root (they create ggc_user as the installer does); elsewhere
they are skipped, and what the simulator then does instead is tested too.
"""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
from pathlib import Path

import pytest

from device_sim.download import DownloadFailed, permission_bits, store_folder
from device_sim.interpolation import NucleusPaths, ResolvedService
from device_sim.ipc import IpcServer
from device_sim.lifecycle import LifecycleRunner, unshare_available
from device_sim.run_with import (
    DEFAULT_POSIX_USER,
    Ownership,
    RunWith,
    access_problem,
    component_default_user,
    setup_run_with,
)

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")


@pytest.mark.parametrize(
    ("permission", "mode"),
    [
        (None, 0o440),  # default Read: OWNER, Execute: NONE
        ({"Read": "NONE"}, 0o400),  # the owner may always read
        ({"Read": "OWNER"}, 0o440),  # "user group is considered to be owner"
        ({"Read": "ALL"}, 0o444),
        ({"Read": "NONE", "Execute": "OWNER"}, 0o550),  # execute needs read
        ({"Read": "OWNER", "Execute": "ALL"}, 0o555),
        ({"Read": "all"}, 0o444),
    ],
)
def test_permission_bits_are_permission_to_file_system_permission(
    permission: dict[str, str] | None, mode: int
) -> None:
    """componentmanager/models/Permission.toFileSystemPermission (nucleus v2.18.2), root
    nucleus: no owner-write (Permissions.setArtifactPermission adds it only for non-root)."""
    assert permission_bits(permission) == mode


def test_unknown_permission_value_is_an_error() -> None:
    with pytest.raises(DownloadFailed, match="Read: 'EVERYONE' is not NONE, OWNER or ALL"):
        permission_bits({"Read": "EVERYONE"})


def test_store_folders_are_rwxr_xr_x_from_the_root_down(tmp_path: Path) -> None:
    root = tmp_path / "gg"
    root.mkdir(mode=0o700)
    folder = store_folder(root, root / "packages/artifacts/c/1.0.0")
    for path in (root, root / "packages", root / "packages/artifacts", folder):
        assert stat.S_IMODE(path.stat().st_mode) == 0o755, path
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o755  # above the root: left alone


def test_component_default_user_comes_from_the_installer_command() -> None:
    assert component_default_user("java -jar G.jar --component-default-user a:b --x") == "a:b"
    assert component_default_user("java -jar G.jar --provision true") == DEFAULT_POSIX_USER


def _paths_with_files(tmp_path: Path) -> NucleusPaths:
    paths = NucleusPaths(tmp_path / "gg")
    for name in ("model", "app"):
        folder = store_folder(paths.root, paths.unarchived(name, "1.0.0") / "pkg")
        (folder / "data.txt").write_text(name)
        (folder / "data.txt").chmod(permission_bits({"Read": "OWNER"}))
    return paths


def _runner(paths: NucleusPaths, run_with: RunWith, network: bool = True) -> LifecycleRunner:
    return LifecycleRunner(
        paths,
        thing_name="t-1",
        region="eu-west-1",
        ipc_env=lambda name: {},
        network=network,
        run_with=run_with,
    )


@as_root
def test_installer_creates_ggc_user_once_and_components_run_as_it(tmp_path: Path) -> None:
    """GreengrassSetup.setComponentDefaultUserAndGroup (useradd -r -m, groupadd -r, usermod),
    idempotent; UnixPlatform.getSudoCommand: sudo -E -H -u ggc_user -g ggc_group."""
    first = setup_run_with(DEFAULT_POSIX_USER)
    again = setup_run_with(DEFAULT_POSIX_USER)
    assert first == again and first.real and first.uid != 0
    assert pwd.getpwnam("ggc_user").pw_uid == first.uid
    paths = _paths_with_files(tmp_path)
    service = ResolvedService(
        "app",
        "1.0.0",
        {},
        {
            "Install": "id -un > who; id -gn >> who; echo $HOME >> who; cat "
            + str(paths.unarchived("app", "1.0.0") / "pkg/data.txt")
            + " >> who"
        },
    )
    boot = _runner(paths, first).boot("b", {"app": service}, ["app"], {})
    assert not boot.broken, boot.broken
    work = paths.work("app")
    assert (work / "who").read_text().split() == ["ggc_user", "ggc_group", first.home, "app"]
    assert stat.S_IMODE(work.stat().st_mode) == 0o700 and work.stat().st_uid == first.uid
    # updateOwner: what is inside the version folder, not the folder itself
    own = paths.unarchived("app", "1.0.0")
    assert own.stat().st_uid == 0 and (own / "pkg/data.txt").stat().st_uid == first.uid
    # the model runs nothing: its files stay root's
    assert (paths.unarchived("model", "1.0.0") / "pkg/data.txt").stat().st_uid == 0


@as_root
def test_a_component_cannot_read_a_read_owner_artifact_of_a_component_without_lifecycle(
    tmp_path: Path,
) -> None:
    """What the simulator found: Read: OWNER is r--r----- root:root for a component whose
    lifecycle runs nothing, and ggc_user is neither; the real process fails, and
    access_problem says why beforehand."""
    run_with = setup_run_with(DEFAULT_POSIX_USER)
    paths = _paths_with_files(tmp_path)
    model_file = paths.unarchived("model", "1.0.0") / "pkg/data.txt"
    service = ResolvedService("app", "1.0.0", {}, {"Install": f"cat {model_file}"})
    boot = _runner(paths, run_with).boot("b", {"app": service}, ["app"], {})
    assert "Permission denied" in boot.broken["app"]
    problem = access_problem(Ownership(paths.root), model_file.parent, run_with)
    assert problem == (f"cannot read {model_file} (owner root:root, mode -r--r----- 0440)")
    model_file.chmod(permission_bits({"Read": "ALL"}))
    assert access_problem(Ownership(paths.root), model_file.parent, run_with) is None


@as_root
def test_skipped_step_hands_nothing_over_and_privileged_step_runs_as_root(tmp_path: Path) -> None:
    """GenericExternalService.run(name, Topics): shouldSkip before run(...) (which calls
    updateComponentPathOwner); addUser: RequiresPrivilege runs as root."""
    run_with = setup_run_with(DEFAULT_POSIX_USER)
    paths = _paths_with_files(tmp_path)
    skipped = ResolvedService(
        "app", "1.0.0", {}, {"Install": {"Script": "x", "Skipif": "onpath sh"}}
    )
    _runner(paths, run_with).boot("b", {"app": skipped}, ["app"], {})
    assert (paths.unarchived("app", "1.0.0") / "pkg/data.txt").stat().st_uid == 0
    privileged = ResolvedService(
        "app", "1.0.0", {}, {"Install": {"Script": "id -u > uid", "RequiresPrivilege": True}}
    )
    boot = _runner(paths, run_with).boot("b", {"app": privileged}, ["app"], {})
    assert not boot.broken
    assert (paths.work("app") / "uid").read_text().strip() == "0"
    assert (paths.unarchived("app", "1.0.0") / "pkg/data.txt").stat().st_uid == run_with.uid


@as_root
@pytest.mark.skipif(not unshare_available(), reason="unshare -n not permitted here")
def test_offline_boot_still_runs_as_ggc_user(tmp_path: Path) -> None:
    run_with = setup_run_with(DEFAULT_POSIX_USER)
    paths = _paths_with_files(tmp_path)
    service = ResolvedService("app", "1.0.0", {}, {"Install": "id -u > uid; id -g >> uid"})
    boot = _runner(paths, run_with, network=False).boot("b", {"app": service}, ["app"], {})
    assert not boot.broken, boot.broken
    assert (paths.work("app") / "uid").read_text().split() == [str(run_with.uid), str(run_with.gid)]


def test_not_root_runs_as_itself_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where users cannot be switched the components run as the simulator's user, the note
    says so, and access is still judged for ggc_user."""
    monkeypatch.setattr(os, "geteuid", lambda: 4242)
    run_with = setup_run_with(DEFAULT_POSIX_USER)
    assert not run_with.real and run_with.label == "ggc_user:ggc_group"
    assert "not root (uid 4242)" in run_with.note and "not ggc_user:ggc_group" in run_with.note


def test_access_is_judged_for_ggc_user_even_without_switching(tmp_path: Path) -> None:
    run_with = RunWith("ggc_user", "ggc_group", os.getuid(), os.getgid(), (), "/", real=False)
    paths = _paths_with_files(tmp_path)
    ownership = Ownership(paths.root)
    model = paths.unarchived("model", "1.0.0")
    assert "cannot read" in str(access_problem(ownership, model, run_with))
    app = paths.unarchived("app", "1.0.0")
    for path in [app / "pkg", app / "pkg/data.txt"]:
        ownership.set(path, run_with)  # recorded: no chown without switching
    assert access_problem(ownership, app, run_with) is None
    assert (app / "pkg/data.txt").stat().st_uid == os.getuid()


def test_ipc_socket_is_open_to_every_user(tmp_path: Path) -> None:
    """Permissions.setIpcSocketPermission: components run as another user than the nucleus."""
    server = IpcServer(tmp_path / "ipc.socket", configuration=lambda n: {}, on_publish=print)
    server.start()
    try:
        assert stat.S_IMODE((tmp_path / "ipc.socket").stat().st_mode) == 0o666
        if os.geteuid() == 0:
            run_with = setup_run_with(DEFAULT_POSIX_USER)
            probe = subprocess.run(
                [
                    "python3",
                    "-c",
                    "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])",
                    str(tmp_path / "ipc.socket"),
                ],
                user=run_with.uid,
                group=run_with.gid,
                capture_output=True,
                timeout=30,
            )
            assert probe.returncode == 0, probe.stderr

    finally:
        server.stop()
