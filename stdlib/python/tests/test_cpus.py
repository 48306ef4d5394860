"""ftc.cpus on made-up /proc/self and cgroup trees: the v1 and v2 layouts
Docker, Kubernetes and systemd produce, read the way the real files are."""

import os

import pytest

from ftc import cpus


def tree(tmp_path, cgroup, mountinfo, files):
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "cgroup").write_text(cgroup)
    (proc / "mountinfo").write_text(mountinfo.replace("SYS", str(tmp_path / "sys")))
    for rel, text in files.items():
        p = tmp_path / "sys" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return str(proc)


V2_MOUNT = "35 24 0:30 / SYS/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate\n"


def test_v2_in_a_private_cgroup_namespace(tmp_path):
    # A container with its own cgroup namespace: its cgroup is "/" and its
    # limit sits at the mount's root (docker run --cpus 2.5).
    proc = tree(tmp_path, "0::/\n", V2_MOUNT, {"fs/cgroup/cpu.max": "250000 100000\n"})
    assert cpus.quota(proc) == 2.5


def test_v2_takes_the_smallest_limit_up_the_tree(tmp_path):
    # A pod's limit binds the container under it, whichever is smaller.
    proc = tree(tmp_path, "0::/kubepods/pod1/ctr\n", V2_MOUNT, {
        "fs/cgroup/kubepods/pod1/ctr/cpu.max": "max 100000\n",
        "fs/cgroup/kubepods/pod1/cpu.max": "400000 100000\n",
        "fs/cgroup/kubepods/cpu.max": "max 100000\n",
    })
    assert cpus.quota(proc) == 4.0


def test_v2_without_a_limit(tmp_path):
    proc = tree(tmp_path, "0::/user.slice\n", V2_MOUNT, {"fs/cgroup/user.slice/cpu.max": "max 100000\n"})
    assert cpus.quota(proc) is None


def test_v1_with_a_mount_root_below_the_hierarchy(tmp_path):
    # cgroup v1 in a container: the cpu hierarchy is mounted from the
    # container's own cgroup, which /proc/self/cgroup names in full.
    mi = ("40 30 0:35 /docker/abc /SYS/fs/cgroup/cpu,cpuacct ro,nosuid - cgroup cgroup rw,cpu,cpuacct\n"
          "41 30 0:36 /docker/abc /SYS/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory\n").replace("/SYS", "SYS")
    proc = tree(tmp_path, "4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n0::/\n", mi, {
        "fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "150000\n",
        "fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000\n",
    })
    assert cpus.quota(proc) == 1.5


def test_v1_unlimited_is_minus_one(tmp_path):
    mi = "40 30 0:35 / SYS/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n"
    proc = tree(tmp_path, "1:cpu:/\n", mi, {
        "fs/cgroup/cpu/cpu.cfs_quota_us": "-1\n",
        "fs/cgroup/cpu/cpu.cfs_period_us": "100000\n",
    })
    assert cpus.quota(proc) is None


def test_hybrid_takes_the_v1_cpu_limit_when_v2_has_no_controller(tmp_path):
    # systemd's hybrid layout: the cpu controller on v1, an empty v2 tree.
    mi = ("40 30 0:35 / SYS/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n"
          "41 30 0:36 / SYS/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n")
    proc = tree(tmp_path, "1:cpu:/job\n0::/job\n", mi, {
        "fs/cgroup/cpu/job/cpu.cfs_quota_us": "300000\n",
        "fs/cgroup/cpu/job/cpu.cfs_period_us": "100000\n",
    })
    assert cpus.quota(proc) == 3.0


def test_no_cgroup_files_means_no_quota(tmp_path):
    assert cpus.quota(str(tmp_path / "missing")) is None
    proc = tree(tmp_path, "0::/\n", V2_MOUNT, {})  # no cpu.max: controller not enabled
    assert cpus.quota(proc) is None


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="Linux only")
def test_available_caps_the_cores_by_the_quota_rounded_up(tmp_path):
    cores = len(os.sched_getaffinity(0))
    proc = tree(tmp_path, "0::/\n", V2_MOUNT, {"fs/cgroup/cpu.max": "50000 100000\n"})
    assert cpus.available(proc) == 1  # half a CPU still gets one worker
    (tmp_path / "b").mkdir()
    proc = tree(tmp_path / "b", "0::/\n", V2_MOUNT, {"fs/cgroup/cpu.max": f"{cores * 100000 + 1} 100000\n"})
    assert cpus.available(proc) == cores  # a quota above the cores changes nothing


def test_prepare_workers_follow_the_quota(tmp_path, monkeypatch):
    from ftc import prepstream

    monkeypatch.delenv("FTC_PREPARE_WORKERS", raising=False)
    monkeypatch.setattr(cpus, "quota", lambda proc="/proc/self": 1.0)
    assert prepstream.workers() == 1
    monkeypatch.setenv("FTC_PREPARE_WORKERS", "3")
    assert prepstream.workers() == 3  # the user's number wins


def test_a_real_v1_cpu_quota(tmp_path):
    """A process moved into a real cgroup with a CFS quota of 1.5 CPUs
    reads 1.5, on a machine with a writable cgroup v1 cpu hierarchy (ours
    and CI's, as root)."""
    import subprocess
    import sys
    import uuid
    from pathlib import Path

    base = Path("/sys/fs/cgroup/cpu")
    if os.geteuid() != 0 or not (base / "cpu.cfs_quota_us").exists() or not os.access(base, os.W_OK):
        pytest.skip("needs root and a writable cgroup v1 cpu hierarchy at /sys/fs/cgroup/cpu")
    cg = base / f"ftc-test-{uuid.uuid4().hex[:8]}"
    cg.mkdir()
    try:
        (cg / "cpu.cfs_period_us").write_text("100000")
        (cg / "cpu.cfs_quota_us").write_text("150000")
        src = Path(cpus.__file__).resolve().parents[1]
        code = (f"import os, sys; open({str(cg / 'cgroup.procs')!r}, 'w').write(str(os.getpid())); "
                f"sys.path.insert(0, {str(src)!r}); from ftc import cpus; print(cpus.quota(), cpus.available())")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        q, n = out.stdout.split()
        assert float(q) == 1.5
        assert int(n) == min(2, len(os.sched_getaffinity(0)))
    finally:
        cg.rmdir()


def test_torch_threads_follow_the_quota_unless_omp_num_threads_says():
    from ftc import trainer

    assert trainer.threads_for(None, 2.5) == 3
    assert trainer.threads_for(None, 0.2) == 1
    assert trainer.threads_for("1", 2.5) is None  # torchrun's, or the user's
    assert trainer.threads_for(None, None) is None  # no quota: torch's own count
