"""Who the components run as, and who owns their files: as a root nucleus sets them.

The stack's ``InstallerCommand`` runs the installer with ``sudo`` and passes
``--component-default-user ggc_user:ggc_group``. Followed (aws-greengrass-nucleus v2.18.2):

* ``easysetup/GreengrassSetup.java`` ``setComponentDefaultUserAndGroup``: as root, a missing
  ``ggc_user`` is created (``UnixPlatform.createUser``: ``useradd -r -m ggc_user``), a missing
  ``ggc_group`` too (``createGroup``: ``groupadd -r ggc_group``) and the user added to it
  (``addUserToGroup``: ``usermod -a -G ggc_group ggc_user``); no ``--component-default-user``
  means ``ggc_user:ggc_group``. Any other user must already exist.
* ``util/platforms/unix/UnixRunWithGenerator.java`` ``generate``: the component's own
  ``RunWith`` user, else the default ``posixUser`` (``user:group``; no group: the user's primary
  group), else, for a non-root nucleus only, the nucleus's own user.
* ``lifecyclemanager/GenericExternalService.java`` ``run``: the first time a lifecycle step of a
  service actually runs a command (the ``runWith`` field is still null), it calls
  ``updateComponentPathOwner`` -> ``RunWithPathOwnershipHandler.updateOwner``: the files *inside*
  ``packages/artifacts/<name>/<version>/`` and ``packages/artifacts-unarchived/<name>/<version>/``
  (recursively; the two version folders themselves keep their owner) and the whole
  ``work/<name>`` folder are chowned to the run-with user and group (``Option.SetOwner``, mode
  unchanged). A component without a lifecycle command (the model: ``"Lifecycle": {}``) never gets
  there: its files stay owned by the nucleus's user.
* ``UnixPlatform`` ``getSudoCommand``: ``sudo -n -E -H -u <user> -g <group> -- sh -c <script>``:
  the environment passes through, ``HOME`` becomes the user's home.

Mode bits are set by :mod:`device_sim.download` (artifacts) and :func:`prepare_work_path`.

Where this cannot be done (the simulator is not root, or ``useradd`` is missing or fails), the
components run as the simulator's own user: :attr:`RunWith.real` is False and
:attr:`RunWith.note` says so in the report. File *access* is still checked
(:func:`access_problem`) against the owners and modes the nucleus would have set, which the
simulator records here even where it cannot chown.
"""

from __future__ import annotations

import grp
import os
import pwd
import shlex
import shutil
import stat
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

GGC_USER = "ggc_user"
GGC_GROUP = "ggc_group"
DEFAULT_POSIX_USER = f"{GGC_USER}:{GGC_GROUP}"  # GreengrassSetup.DEFAULT_POSIX_USER
NUCLEUS_USER = "root"  # the InstallerCommand runs the nucleus with sudo
NUCLEUS_GROUP = "root"


class RunWithError(RuntimeError):
    """The run-with user cannot be set up (a user that does not exist, ...)."""


def component_default_user(installer_command: str) -> str:
    """``--component-default-user`` of the installer command; ``ggc_user:ggc_group`` when absent
    (GreengrassSetup.setComponentDefaultUserAndGroup)."""
    words = shlex.split(installer_command)
    for i, word in enumerate(words):
        if word == "--component-default-user" and i + 1 < len(words):
            return words[i + 1]
        if word.startswith("--component-default-user="):
            return word.split("=", 1)[1]
    return DEFAULT_POSIX_USER


@dataclass(frozen=True)
class RunWith:
    """The user and group components run as.

    real: processes really run as ``uid``/``gid`` and files are really chowned; False where the
        simulator could not (then they run as the simulator's user, and ``note`` says why).
    """

    user: str
    group: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str
    real: bool
    note: str = ""

    @property
    def label(self) -> str:
        return f"{self.user}:{self.group}"


def _run(command: list[str]) -> str | None:
    """Run an account command; None on success, else why it failed."""
    if shutil.which(command[0]) is None:
        return f"{command[0]} not found"
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"{' '.join(command)}: {error}"
    if result.returncode != 0:
        return f"{' '.join(command)}: exit {result.returncode}: {result.stderr.strip()[:200]}"
    return None


def _exists(lookup: str, name: str) -> bool:
    try:
        (pwd.getpwnam if lookup == "user" else grp.getgrnam)(name)
    except KeyError:
        return False
    return True


def self_run_with(why: str, user: str, group: str) -> RunWith:
    """Processes run as the simulator's own user; access is still judged for ``user:group``."""
    uid = os.geteuid()
    me, mine = _name_of_uid(uid), _name_of_gid(os.getegid())
    try:
        home = pwd.getpwuid(uid).pw_dir
    except KeyError:  # a uid without a passwd entry (some containers)
        home = os.environ.get("HOME", "/")
    return RunWith(
        user=user,
        group=group or user,
        uid=uid,
        gid=os.getegid(),
        groups=(),
        home=home,
        real=False,
        note=(
            f"components run as {me}:{mine}, not {user}:{group or user} as on the "
            f"device: {why}. File access inside the nucleus root is still checked for "
            f"{user}:{group or user} against the owners and modes the nucleus sets"
        ),
    )


def setup_run_with(spec: str) -> RunWith:
    """Create ``ggc_user``/``ggc_group`` where missing, as the installer does, and return who the
    components run as. Not root, or accounts that cannot be created: the simulator's own user,
    with a note (see the module docstring)."""
    user, _, group = spec.partition(":")
    if not user:
        raise RunWithError(f"--component-default-user {spec!r}: No user specified")
    if os.geteuid() != 0:
        return self_run_with(f"the simulator is not root (uid {os.geteuid()})", user, group)
    problems: list[str | None] = []
    if user == GGC_USER:  # GreengrassSetup.setComponentDefaultUserAndGroup
        update_group = False
        if not _exists("user", user):
            problems.append(_run(["useradd", "-r", "-m", user]))
            update_group = True
        if group == GGC_GROUP:
            if not _exists("group", group):
                problems.append(_run(["groupadd", "-r", group]))
                update_group = True
            if update_group and not any(problems):
                problems.append(_run(["usermod", "-a", "-G", group, user]))
    failed = [p for p in problems if p]
    if failed:
        return self_run_with("; ".join(failed), user, group)
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise RunWithError(
            f"component default user {user} does not exist on this machine (the installer "
            f"creates only {GGC_USER}:{GGC_GROUP}; UnixRunWithGenerator: 'Could not lookup user')"
        ) from None
    if group:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            raise RunWithError(f"component default group {group} does not exist") from None
    else:
        gid = entry.pw_gid  # UnixRunWithGenerator: the user's primary group
        group = grp.getgrgid(gid).gr_name
    return RunWith(
        user=user,
        group=group,
        uid=entry.pw_uid,
        gid=gid,
        groups=tuple(os.getgrouplist(user, gid)),
        home=entry.pw_dir,
        real=True,
    )


# ---------------------------------------------------------------- ownership as the nucleus sets it
@dataclass
class Ownership:
    """Who owns what under the nucleus root, as the nucleus would have set it: the nucleus's
    user (root) unless :func:`update_owner` handed a path to a run-with user. Kept even where
    the simulator cannot chown, so :func:`access_problem` judges what the device would do."""

    root: Path
    owners: dict[Path, tuple[str, str]] = field(default_factory=dict)
    apply: bool = True  # False: only record (what the nucleus would do, for access_problem)

    def owner(self, path: Path) -> tuple[str, str]:
        return self.owners.get(path, (NUCLEUS_USER, NUCLEUS_GROUP))

    def set(self, path: Path, run_with: RunWith) -> None:
        self.owners[path] = (run_with.user, run_with.group)
        if run_with.real and self.apply:
            os.lchown(path, run_with.uid, run_with.gid)


def _walk(path: Path) -> Iterable[Path]:
    yield path
    if path.is_dir() and not path.is_symlink():
        for child in sorted(path.iterdir()):
            yield from _walk(child)


def update_owner(
    ownership: Ownership, artifacts: Path, unarchived: Path, work: Path, run_with: RunWith
) -> None:
    """``RunWithPathOwnershipHandler.updateOwner``: what is inside the artifact folders (not the
    folders themselves) and the whole work folder go to the run-with user and group."""
    for folder, apply_to_root in ((artifacts, False), (unarchived, False), (work, True)):
        if not folder.exists():
            continue
        tops = [folder] if apply_to_root else sorted(folder.iterdir())
        for top in tops:
            for path in _walk(top):
                ownership.set(path, run_with)


def prepare_work_path(work: Path) -> None:
    """``NucleusPaths.setWorkPath`` (``work/``: rwxr-xr-x) and ``workPath(name)`` (``work/<name>``:
    rwx------, ``Permissions.setServiceWorkPathPermission``), created by the nucleus (root)."""
    work.mkdir(parents=True, exist_ok=True)
    work.parent.chmod(0o755)
    work.chmod(0o700)


def _may(mode: int, owner: tuple[str, str], run_with: RunWith, what: str) -> bool:
    """Can ``run_with`` ``what`` (``r``, ``w`` or ``x``) a file of this owner and mode."""
    if run_with.user == "root":
        return True  # the superuser is not held to the mode bits
    shift = {"r": 2, "w": 1, "x": 0}[what]
    user, group = owner
    if user == run_with.user:
        return bool(mode >> (6 + shift) & 1)
    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        gid = None
    if group == run_with.group or (gid is not None and gid in run_with.groups):
        return bool(mode >> (3 + shift) & 1)
    return bool(mode >> shift & 1)


def access_problem(ownership: Ownership, path: Path, run_with: RunWith) -> str | None:
    """Why ``run_with`` cannot read ``path`` (every folder on the way searchable; a file readable;
    a folder readable and searchable, and so everything in it), or None when it can.

    Inside the nucleus root, owners are those the nucleus would have set (:class:`Ownership`);
    outside it, the real ones, judged only where processes really run as ``run_with``."""
    root = ownership.root

    def inside(p: Path) -> bool:
        return p == root or root in p.parents

    def owner(p: Path) -> tuple[str, str]:
        if inside(p):
            return ownership.owner(p)
        st = p.stat()
        return _name_of_uid(st.st_uid), _name_of_gid(st.st_gid)

    for folder in reversed(path.parents):
        if not run_with.real and not inside(folder):
            continue
        if not folder.exists():
            return None
        mode = folder.stat().st_mode
        if not _may(mode, owner(folder), run_with, "x"):
            return f"cannot search {folder} ({_describe(owner(folder), mode)})"
    if not path.exists():
        return None
    for item in _walk(path):
        mode = item.lstat().st_mode
        if stat.S_ISLNK(mode) or (not run_with.real and not inside(item)):
            continue
        if not _may(mode, owner(item), run_with, "r"):
            return f"cannot read {item} ({_describe(owner(item), mode)})"
        if stat.S_ISDIR(mode) and not _may(mode, owner(item), run_with, "x"):
            return f"cannot search {item} ({_describe(owner(item), mode)})"
    return None


def _describe(owner: tuple[str, str], mode: int) -> str:
    return f"owner {owner[0]}:{owner[1]}, mode {stat.filemode(mode)} {stat.S_IMODE(mode):04o}"


def _name_of_uid(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _name_of_gid(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)
