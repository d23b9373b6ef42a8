"""The grafana role's check of the downloaded apt signing key (install-Debian.yml).

The role's own command (vars/main.yml: __grafana_apt_key_check_argv) runs here
on a download holding two keys: only the pinned one may reach apt's keyring,
and a pin that is not in the download is reported as missing.
"""

import json
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

PLAYBOOK = """
- hosts: localhost
  connection: local
  gather_facts: false
  vars_files: ["{root}/roles/grafana/vars/main.yml"]
  tasks:
    - name: The role's key check, on the test download
      ansible.builtin.command:
        argv: "{{{{ __grafana_apt_key_check_argv + __grafana_apt_key_fingerprints_wanted }}}}"
        stdin: "{{{{ __grafana_apt_key.content }}}}"
      register: __grafana_apt_key_check
      changed_when: false

    - name: What the role's tasks read from it
      ansible.builtin.copy:
        dest: "{out}"
        content: "{{{{ {{'found': __grafana_apt_key_fingerprints_found, 'pinned': __grafana_apt_key_pinned}} | to_json }}}}"
        mode: "0600"
"""


def gpg(home, *args, **kwargs):
    return subprocess.run(["gpg", "--batch", "--homedir", str(home)] + list(args), check=True,
                          capture_output=True, text=True, **kwargs).stdout


def fingerprints(home):
    return re.findall(r"(?m)^pub:.*\s+fpr:+([0-9A-F]{40}):", gpg(home, "--with-colons", "--list-keys"))


@pytest.fixture(scope="module")
def download(tmp_path_factory):
    """An armoured download with two keys, and their fingerprints in order."""
    home = tmp_path_factory.mktemp("gnupg")
    os.chmod(str(home), 0o700)
    for name in ("Pinned Signer", "Other Signer"):
        gpg(home, "--passphrase", "", "--quick-gen-key", "%s <signer@example.invalid>" % name, "ed25519", "sign",
            "never")
    by_name = {}
    for fpr in fingerprints(home):
        uid = gpg(home, "--with-colons", "--list-keys", fpr)
        by_name["pinned" if "Pinned Signer" in uid else "other"] = fpr
    return gpg(home, "--armor", "--export"), by_name


def run_check(tmp_path, content, wanted):
    out = tmp_path / "out.json"
    playbook = tmp_path / "check.yml"
    playbook.write_text(PLAYBOOK.format(root=ROOT, out=out))
    extra = tmp_path / "vars.json"
    extra.write_text(json.dumps({"ansible_python_interpreter": sys.executable, "grafana_apt_key_fingerprints": wanted,
                                 "__grafana_apt_key": {"content": content}}))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, "collections"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,",
                           str(playbook), "-e", "@" + str(extra)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    return json.loads(out.read_text())


def test_only_the_pinned_key_is_exported(tmp_path, download):
    content, fpr = download
    # Pins are written as operators copy them from the docs: spaced, any case.
    spaced = " ".join(fpr["pinned"][i:i + 4] for i in range(0, 40, 4)).lower()
    result = run_check(tmp_path, content, [spaced])
    assert sorted(result["found"]) == sorted([fpr["pinned"], fpr["other"]])
    assert result["pinned"].startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    assert result["pinned"].endswith("-----END PGP PUBLIC KEY BLOCK-----")
    home = tmp_path / "apt-keyring"
    home.mkdir(mode=0o700)
    gpg(home, "--import", input=result["pinned"])
    assert fingerprints(home) == [fpr["pinned"]]


def test_a_pin_missing_from_the_download_is_not_found(tmp_path, download):
    content, fpr = download
    absent = "0123456789ABCDEF0123456789ABCDEF01234567"
    result = run_check(tmp_path, content, [absent])
    assert absent not in result["found"]
    assert sorted(result["found"]) == sorted([fpr["pinned"], fpr["other"]])
    # Nothing of the download is exported for a fingerprint it does not hold.
    assert "BEGIN PGP PUBLIC KEY BLOCK" not in result["pinned"]
