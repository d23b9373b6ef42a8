# -*- coding: utf-8 -*-
# Copyright: llmops.vllm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Resolves a vLLM host's instances to the arguments and environment each runs with."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import re

from ansible.errors import AnsibleFilterError

ENV_KEY = re.compile(r"^[A-Z_][A-Z0-9_]*$")


def vllm_instance_config(instances, settings):
    """Each instance's unit, arguments and environment; instance keys win over role-wide settings.

    ``instances`` comes from the fleet model (fleet_instances); ``settings`` holds
    the role-wide values: model_arg, served_name, host, shutdown_timeout,
    tensor_parallel_size, gpu_memory_utilization, max_model_len, dtype,
    model_source, model_revision, extra_args, env.
    """
    try:
        out = []
        for inst in instances:
            tp = inst.get("tensor_parallel_size", settings["tensor_parallel_size"])
            gmu = inst.get("gpu_memory_utilization", settings["gpu_memory_utilization"])
            mml = inst.get("max_model_len", settings["max_model_len"])
            args = ["--model", str(settings["model_arg"]),
                    "--served-model-name", str(settings["served_name"]),
                    "--host", str(settings["host"]),
                    "--port", str(int(inst["port"])),
                    "--tensor-parallel-size", str(tp),
                    "--gpu-memory-utilization", str(gmu),
                    "--shutdown-timeout", str(settings["shutdown_timeout"])]
            if settings["model_source"] == "hf":
                args += ["--revision", str(settings["model_revision"])]
            if int(mml or 0) > 0:
                args += ["--max-model-len", str(mml)]
            if settings["dtype"] != "auto":
                args += ["--dtype", str(settings["dtype"])]
            args += [str(a) for a in settings.get("extra_args") or []]
            args += [str(a) for a in inst.get("extra_args") or []]
            env = dict((str(k), str(v)) for k, v in (settings.get("env") or {}).items())
            env.update((str(k), str(v)) for k, v in (inst.get("env") or {}).items())
            if inst.get("cuda_visible_devices") is not None:
                env["CUDA_VISIBLE_DEVICES"] = str(inst["cuda_visible_devices"])
            out.append({"name": inst["name"], "port": int(inst["port"]), "unit": "vllm@%s.service" % inst["name"],
                        "args": args, "env": env})
        return out
    except (KeyError, TypeError, ValueError) as e:
        raise AnsibleFilterError("vllm_instance_config: %s" % e)


def _env_value(key, value):
    """One value as systemd's EnvironmentFile reads it: double-quoted, with \\ and \" escaped."""
    value = str(value)
    if "\n" in value or "\r" in value or "\x00" in value:
        raise AnsibleFilterError("vllm_env_file: the value of %s holds a line break or NUL, which would end "
                                 "the line in the environment file (check vllm_server_env, the instances' env, "
                                 "vllm_server_model and vllm_server_served_model_name)" % key)
    return '"%s"' % value.replace("\\", "\\\\").replace('"', '\\"')


def vllm_env_file(instance):
    """The body of an instance's environment file: VLLM_ARGS, then its environment, sorted."""
    lines = ["VLLM_ARGS=%s" % _env_value("VLLM_ARGS", " ".join(instance["args"]))]
    for key in sorted(instance.get("env") or {}):
        if not ENV_KEY.match(str(key)):
            raise AnsibleFilterError("vllm_env_file: environment variable name %r of instance %s (vllm_server_env "
                                     "or the instance's env) must match %s" % (key, instance.get("name"), ENV_KEY.pattern))
        lines.append("%s=%s" % (key, _env_value(key, instance["env"][key])))
    return "\n".join(lines) + "\n"


def vllm_fingerprints(instances, common):
    """Each instance's fingerprint: a digest of what every instance shares (unit, secrets,
    release, model: ``common``) and of its own environment file."""
    out = {}
    for inst in instances:
        digest = hashlib.sha256()
        digest.update(str(common).encode("utf-8"))
        digest.update(b"\0")
        digest.update(vllm_env_file(inst).encode("utf-8"))
        out[inst["name"]] = digest.hexdigest()
    return out


class FilterModule(object):
    def filters(self):
        return {
            "vllm_instance_config": vllm_instance_config,
            "vllm_env_file": vllm_env_file,
            "vllm_fingerprints": vllm_fingerprints,
        }
