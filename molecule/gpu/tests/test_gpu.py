"""nvidia_gpu and gpu_exporter on Debian 12 containers without a GPU (see molecule.yml)."""

import hashlib

import pytest

DRIVER_SET = ["nvidia-kernel-dkms", "nvidia-smi", "libcuda1", "nvidia-persistenced", "nvidia-modprobe"]
TOOLKIT_STANDIN = "libcudart11.0"
CUDA_SOURCE = "/etc/apt/sources.list.d/cuda-debian12-x86_64.list"
CUDA_KEYRING = "/usr/share/keyrings/cuda-archive-keyring.gpg"
EXPORTER_UNIT = "nvidia-dcgm-exporter.service"


def name_of(host):
    return host.ansible.get_variables()["inventory_hostname"]


@pytest.fixture
def nogpu(host):
    if name_of(host) != "gpu-nogpu":
        pytest.skip("gpu-nogpu only")
    return host


@pytest.fixture
def forced(host):
    if name_of(host) != "gpu-forced":
        pytest.skip("gpu-forced only")
    return host


@pytest.fixture
def cudarepo(host):
    if name_of(host) != "gpu-cudarepo":
        pytest.skip("gpu-cudarepo only")
    return host


def prop(host, unit, name):
    return host.check_output("systemctl show -p %s --value %s", name, unit)


# ---- no GPU, defaults: nothing installed or written --------------------------------

def test_nogpu_installs_nothing(nogpu):
    assert nogpu.run("dpkg-query -W -f '${Package}\\n' | grep -E '^(nvidia|libnvidia|libcuda|datacenter-gpu)'").stdout == ""
    for path in ["/etc/modprobe.d/llmops-blacklist-nouveau.conf", CUDA_SOURCE, CUDA_KEYRING,
                 "/etc/apt/sources.list.d/llmops-nvidia-debian.sources",
                 "/etc/systemd/system/" + EXPORTER_UNIT, "/etc/dcgm-exporter"]:
        assert not nogpu.file(path).exists, path
    assert nogpu.run("getent passwd dcgm-exporter").rc != 0


# ---- forced, Debian's own packages -------------------------------------------------

def test_forced_enables_debian_components(forced):
    sources = forced.file("/etc/apt/sources.list.d/llmops-nvidia-debian.sources").content_string
    assert "Components: contrib non-free non-free-firmware" in sources
    assert "Suites: bookworm-security" in sources


@pytest.mark.parametrize("pkg", DRIVER_SET + [TOOLKIT_STANDIN, "firmware-nvidia-gsp", "libnvidia-ml1"])
def test_forced_packages_installed_and_held(forced, pkg):
    assert forced.package(pkg).is_installed
    assert pkg in forced.check_output("apt-mark showhold").split()


def test_forced_hold_spares_unrelated_packages(forced):
    held = forced.check_output("apt-mark showhold").split()
    assert "dkms" not in held and "systemd" not in held


def test_forced_blacklists_nouveau(forced):
    conf = forced.file("/etc/modprobe.d/llmops-blacklist-nouveau.conf")
    assert conf.mode == 0o644
    assert "blacklist nouveau" in conf.content_string
    assert "options nouveau modeset=0" in conf.content_string
    # modprobe reads it (the blacklist is in effect for the next boot).
    assert "blacklist nouveau" in forced.check_output("modprobe --showconfig | grep nouveau")


def test_forced_persistenced_configured_not_started(forced):
    unit = "nvidia-persistenced.service"
    assert "--user nvpd" in prop(forced, unit, "ExecStart")
    assert "--no-persistence-mode" not in prop(forced, unit, "ExecStart")
    assert prop(forced, unit, "UnitFileState") == "enabled"
    # No GPU, no driver loaded: enabled for the next boot, not running. (Debian's postinst
    # tries to start it once at install time; that start fails without a driver.)
    assert prop(forced, unit, "ActiveState") in ("inactive", "failed")
    assert prop(forced, unit, "MainPID") == "0"


def test_forced_no_kernel_module_loaded(forced):
    assert not forced.file("/sys/module/nvidia").exists


def test_forced_real_nvidia_smi_reports_no_driver(forced):
    out = forced.run("nvidia-smi")
    assert out.rc != 0
    assert "couldn't communicate with the NVIDIA driver" in out.stdout + out.stderr


def test_forced_exporter_unit_hardened(forced):
    unit = EXPORTER_UNIT
    assert forced.file("/etc/systemd/system/" + unit).content_string.startswith("#")
    assert prop(forced, unit, "User") == "dcgm-exporter"
    assert prop(forced, unit, "NoNewPrivileges") == "yes"
    assert prop(forced, unit, "ProtectSystem") == "strict"
    assert prop(forced, unit, "PrivateDevices") == "yes"
    assert prop(forced, unit, "CapabilityBoundingSet") == ""
    execstart = prop(forced, unit, "ExecStart")
    # The host's own address on the fleet network (its name resolves to it), not every interface.
    address = forced.check_output("getent ahostsv4 gpu-forced").split()[0]
    assert "--address=%s:9400 " % address in execstart
    assert "--collectors=/etc/dcgm-exporter/llmops-counters.csv" in execstart
    assert "--remote-hostengine-info=localhost:5555" in execstart
    assert prop(forced, unit, "UnitFileState") == "enabled"
    assert prop(forced, unit, "ActiveState") == "inactive"
    assert forced.user("dcgm-exporter").shell == "/usr/sbin/nologin"


def test_forced_exporter_counters(forced):
    lines = [line for line in forced.file("/etc/dcgm-exporter/llmops-counters.csv").content_string.splitlines()
             if line and not line.startswith("#")]
    fields = [line.split(",")[0] for line in lines]
    assert "DCGM_FI_DEV_GPU_UTIL" in fields and "DCGM_FI_DEV_FB_USED" in fields
    assert all(len(line.split(",")) == 3 for line in lines)
    assert all(line.split(",")[1].strip() in ("gauge", "counter", "label") for line in lines)


# ---- CUDA repository configuration (the repository is not reachable here) ------------

def test_cudarepo_source(cudarepo):
    source = cudarepo.file(CUDA_SOURCE)
    assert source.mode == 0o644
    lines = [line for line in source.content_string.splitlines() if line and not line.startswith("#")]
    assert lines == ["deb [signed-by=%s] https://developer.download.nvidia.com/compute/cuda/repos/debian12/x86_64/ /" % CUDA_KEYRING]


def test_cudarepo_keyring_is_the_given_file(cudarepo):
    keyring = cudarepo.file(CUDA_KEYRING)
    assert keyring.mode == 0o644 and keyring.user == "root"
    with open("/usr/share/keyrings/debian-archive-keyring.gpg", "rb") as handle:
        assert keyring.sha256sum == hashlib.sha256(handle.read()).hexdigest()


def test_cudarepo_pin(cudarepo):
    pin = cudarepo.file("/etc/apt/preferences.d/cuda-repository-pin-600").content_string
    assert "Pin: release l=NVIDIA CUDA" in pin and "Pin-Priority: 600" in pin


def test_cudarepo_apt_accepts_the_source(cudarepo):
    # --print-uris: apt parses the sources and prints what it would fetch, fetching nothing.
    uris = cudarepo.check_output("apt-get update --print-uris")
    assert "'https://developer.download.nvidia.com/compute/cuda/repos/debian12/x86_64/InRelease'" in uris
    assert "'https://developer.download.nvidia.com/compute/cuda/repos/debian12/x86_64/Packages.xz'" in uris
