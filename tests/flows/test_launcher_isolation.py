"""Each test runs a script inside the real hardened container and asserts on what the
launcher's result and events say."""

from __future__ import annotations

import json
import threading

import pytest

from flows.launcher import LaunchSpec, Limits, Outcome, launch, user_workspace
from flows.launcher.launch import DEADLINE_MARGIN_SECONDS
from tests.flows.conftest import script

pytestmark = pytest.mark.docker


def test_writes_outside_the_workspace_and_tmp_are_refused(run_python):
    run = run_python(
        script(
            """
            results = {}
            for path in ['/x', '/etc/x', '/app/x', '/opt/perstack/x', '/home/x', '/var/tmp/x',
                         '/run/x', '/dev/shm/x', '/dev/x', '/workspace/ok', '/tmp/ok']:
                try:
                    with open(path, 'w') as f:
                        f.write('x')
                    results[path] = 'written'
                except OSError as error:
                    results[path] = type(error).__name__
            report(results=results)
            """
        )
    )
    results = run.probe()["results"]
    assert results.pop("/workspace/ok") == "written"
    assert results.pop("/tmp/ok") == "written"
    assert all(outcome != "written" for outcome in results.values()), results
    assert run.result.outcome is Outcome.COMPLETED


def test_etc_shadow_is_unreadable_and_the_process_has_no_privileges(run_python):
    run = run_python(
        script(
            """
            try:
                open('/etc/shadow').read()
                shadow = 'read'
            except OSError as error:
                shadow = type(error).__name__
            status = dict(line.split(':\\t', 1) for line in open('/proc/self/status')
                          if ':\\t' in line)
            report(shadow=shadow, uid=os.getuid(), cap_eff=status['CapEff'].strip(),
                   cap_bnd=status['CapBnd'].strip(), no_new_privs=status['NoNewPrivs'].strip())
            """
        )
    )
    probe = run.probe()
    assert probe["shadow"] == "PermissionError"
    assert probe["uid"] == 10001
    assert int(probe["cap_eff"], 16) == 0
    assert int(probe["cap_bnd"], 16) == 0
    assert probe["no_new_privs"] == "1"


def test_symlinks_planted_in_the_workspace_do_not_lead_out_of_it(run_python, make_spec, tmp_path):
    host_secret = tmp_path / "host-secret.txt"
    host_secret.write_text("host secret")
    workspace = tmp_path / "planted" / "alice"
    workspace.mkdir(parents=True)
    (workspace / "to-host-secret").symlink_to(host_secret)
    (workspace / "to-root").symlink_to("/")
    run = run_python(
        script(
            """
            def attempt(action):
                try:
                    return action()
                except OSError as error:
                    return type(error).__name__
            report(
                secret=attempt(lambda: open('/workspace/to-host-secret').read()),
                shadow=attempt(lambda: open('/workspace/to-root/etc/shadow').read()),
                write=attempt(lambda: open('/workspace/to-root/etc/planted', 'w').write('x')),
            )
            # Planted from inside: a link to the root, which the host must never follow.
            os.symlink('/', '/workspace/planted-root')
            """
        ),
        workspace=workspace,
    )
    probe = run.probe()
    assert probe["secret"] == "FileNotFoundError"
    assert probe["shadow"] == "PermissionError"
    assert probe["write"] == "OSError"  # read-only file system
    assert host_secret.read_text() == "host secret"
    assert (workspace / "planted-root").is_symlink()
    # Measured without following links: the workspace holds only a few small entries.
    assert run.result.workspace_bytes < 1024 * 1024


def test_set_id_files_and_an_open_workspace_do_not_outlive_the_run(run_python, tmp_path):
    # The run may set modes freely inside; the host gets its workspace back closed, with
    # no set-ID program of the container's user left in it.
    workspace = tmp_path / "modes" / "alice"
    run_python(
        script(
            """
            import shutil
            shutil.copy('/bin/sh', '/workspace/sh')
            os.chmod('/workspace/sh', 0o6755)
            os.chmod('/workspace', 0o777)
            report(done=True)
            """
        ),
        workspace=workspace,
    )
    assert (workspace / "sh").stat().st_mode & 0o7777 == 0o755
    assert workspace.stat().st_mode & 0o777 == 0o750


def test_the_container_knows_its_own_deadline_past_the_wall_clock(run_python):
    # Its init ends it at that deadline should the launcher be gone (runtime.pid1).
    run = run_python(
        script("report(deadline=os.environ.get('PERSTACK_DEADLINE_SECONDS'))\n"),
        limits=Limits(wall_clock_seconds=20, grace_seconds=5),
    )
    assert float(run.probe()["deadline"]) == 20 + 5 + DEADLINE_MARGIN_SECONDS


# Every process's environment, as an Expert's command would look for secrets.
READ_ENVIRONS = r"""
for p in /proc/[0-9]*; do
  tr '\0' '\n' < $p/environ 2>/dev/null | grep CANARY
done
echo probed
"""


def test_the_experts_commands_cannot_read_an_mcp_servers_secrets(make_spec, tmp_path):
    # Regression: MCP servers are started with exec (dumpable again), as the container's
    # user, so an exec command read their requiredEnv from /proc/<pid>/environ.
    workspace = tmp_path / "mcp-secret" / "alice"
    workspace.mkdir(parents=True)
    (workspace / "script.json").write_text(
        json.dumps(
            [
                {"tool_use": [{"name": "get_current_time", "input": {"timezone": "UTC"}}]},
                {"tool_use": [{"name": "exec", "input": exec_input(READ_ENVIRONS)}]},
                {"text": "done"},
            ]
        )
    )
    (workspace / "perstack.toml").write_text(
        '[experts."m"]\ninstruction = "probe"\n'
        '[experts."m".skills."@perstack/base"]\ntype = "mcpStdioSkill"\ncommand = "npx"\n'
        'packageName = "@perstack/base"\npick = ["exec"]\n'
        '[experts."m".skills."time"]\ntype = "mcpStdioSkill"\ncommand = "mcp-server-time"\n'
        'args = ["--local-timezone", "UTC"]\npick = ["get_current_time"]\n'
        'requiredEnv = ["SKILL_TOKEN"]\n'
    )
    events: list[dict] = []
    spec = make_spec(
        args=("m", "probe", "--config", "/workspace/perstack.toml")
        + ("--provider", "scripted", "--script", "/workspace/script.json"),
        entrypoint=None,
        workspace=workspace,
        env={"SKILL_TOKEN": "tok-SKILL-CANARY"},
    )
    result = launch(spec, on_event=events.append)
    assert result.outcome is Outcome.COMPLETED, result.reason
    (results,) = [e["toolResults"] for e in events if e.get("type") == "resolveToolResults"][1:]
    output = json.dumps(results)
    assert "probed" in output
    assert "CANARY" not in output


def exec_input(command: str) -> dict:
    return {
        "command": "sh",
        "args": ["-c", command],
        "env": {},
        "cwd": ".",
        "stdout": True,
        "stderr": True,
    }


def test_a_canary_secret_in_the_host_environment_is_not_visible(run_python, monkeypatch, caplog):
    canary = "canary-7f3a9c-do-not-leak"
    passed = "passed-secret-51b2e0"
    monkeypatch.setenv("PERSTACK_TEST_CANARY", canary)
    monkeypatch.setenv("PERSTACK_TEST_PASSED", passed)
    caplog.set_level("DEBUG")
    run = run_python(
        script(
            f"""
            environ = dict(os.environ)
            report(names=sorted(environ), canary_seen={canary!r} in repr(environ),
                   passed_ok=environ.get('PERSTACK_TEST_PASSED') == {passed!r})
            """
        ),
        env_from_host=("PERSTACK_TEST_PASSED",),
    )
    probe = run.probe()
    assert "PERSTACK_TEST_CANARY" not in probe["names"]
    assert probe["canary_seen"] is False
    assert probe["passed_ok"] is True
    launcher_events = [e for e in run.events if e.get("type") == "dockerContainerStatus"]
    assert passed not in repr(launcher_events)
    assert passed not in caplog.text and canary not in caplog.text
    assert canary not in run.result.captured.events.read_text()


def test_the_container_has_every_isolation_setting(docker_client, make_spec, session_id, tmp_path):
    seen: dict = {}
    cancel = threading.Event()

    def on_event(event: dict) -> None:
        if event.get("type") == "probe":
            (container,) = docker_client.containers.list(
                filters={"label": ["perstack.role=runtime", f"test.session={session_id}"]}
            )
            seen.update(container.attrs)
            cancel.set()

    workspace = tmp_path / "settings" / "alice"
    spec = make_spec(
        workspace=workspace,
        entrypoint=("python3", "-c"),
        args=(script("import time\nreport()\ntime.sleep(60)\n"),),
        limits=Limits(memory_bytes=256 * 1024 * 1024, cpus=0.5, pids=100),
    )
    result = launch(spec, on_event=on_event, cancel=cancel, client=docker_client)

    assert result.outcome is Outcome.CANCELLED
    host = seen["HostConfig"]
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"]
    assert "no-new-privileges:true" in host["SecurityOpt"]
    assert (host["PidsLimit"], host["Memory"], host["NanoCpus"]) == (100, 256 * 2**20, 5 * 10**8)
    assert host["MemorySwap"] == host["Memory"]
    # No engine init: the runtime's own, not dumpable, is PID 1 (runtime.pid1).
    assert (host["NetworkMode"], host["IpcMode"], host["Init"]) == ("none", "none", False)
    assert list(host["Tmpfs"]) == ["/tmp"]
    assert seen["Config"]["User"] == "10001:10001"
    writable = [(m["Source"], m["Destination"]) for m in seen["Mounts"] if m["RW"]]
    assert writable == [(str(workspace), "/workspace")]
    labels = seen["Config"]["Labels"]
    assert labels["perstack.managed"] == "true"
    assert labels["perstack.role"] == "runtime"
    assert labels["perstack.execution"] == result.execution_id


def test_children_of_the_runtime_cannot_read_its_environment_from_proc(run_python):
    # What `exec` commands and MCP servers are: children of the runtime, same user. The
    # runtime marks itself not dumpable (runtime.hardening) before it uses any secret.
    secret = "sk-ant-proc-environ-canary"
    run = run_python(
        script(
            f"""
            import subprocess
            from runtime.hardening import make_undumpable
            hardened = make_undumpable()
            child = subprocess.run(
                ["sh", "-c", "cat /proc/$PPID/environ"], capture_output=True, env={{}}
            )
            report(hardened=hardened, code=child.returncode,
                   leaked={secret!r} in child.stdout.decode(errors="replace"))
            """
        ),
        env={"ANTHROPIC_API_KEY": secret},
    )
    probe = run.probe()
    assert probe["hardened"] is True
    assert probe["leaked"] is False
    assert probe["code"] != 0


PID1_PROBE = r"""
set +e
cat /proc/1/environ > /workspace/pid1-environ 2>/dev/null; echo "environ=$?"
echo '{"type":"dockerContainerStatus","status":"running","service":"forged"}' \
    > /proc/1/fd/1 2>/dev/null; echo "stdout=$?"
for i in 1 2 3 4 5; do sh -c 'sleep 0.1 &'; done
sleep 1
zombies=0
for stat in /proc/[0-9]*/stat; do
    case "$(cut -d' ' -f3 "$stat" 2>/dev/null)" in Z) zombies=$((zombies+1));; esac
done
echo "zombies=$zombies"
"""


def test_the_expert_cannot_read_the_key_or_write_stdout_through_pid_1_and_orphans_are_reaped(
    docker_client, session_id, tmp_path, leftovers
):
    # The engine's init would be PID 1, dumpable and holding the container's environment:
    # the runtime is PID 1 instead and splits off an init of its own that is not.
    secret = "sk-ant-pid1-canary"
    workspace = user_workspace(tmp_path / "workspaces", "alice")
    workspace.mkdir(parents=True)
    turns = [
        {
            "tool_use": [
                {
                    "name": "exec",
                    "input": {
                        "command": "sh",
                        "args": ["-c", PID1_PROBE],
                        "env": {},
                        "cwd": ".",
                        "stdout": True,
                        "stderr": True,
                    },
                }
            ]
        },
        {"text": "probed"},
    ]
    (workspace / ".script.json").write_text(json.dumps(turns))
    (workspace / ".perstack.toml").write_text(
        '[experts."prober"]\ninstruction = "Probe."\n'
        '[experts."prober".skills."@perstack/base"]\ntype = "mcpStdioSkill"\n'
        'command = "npx"\npackageName = "@perstack/base"\npick = ["exec", "attemptCompletion"]\n'
    )
    received: list[dict] = []
    spec = LaunchSpec.for_expert(
        "prober",
        "probe",
        runtime_args=(
            "--config",
            "/workspace/.perstack.toml",
            "--provider",
            "scripted",
            "--script",
            "/workspace/.script.json",
        ),
        workspace=workspace,
        capture_dir=tmp_path / "captures",
        labels={"test.session": session_id},
        env={"ANTHROPIC_API_KEY": secret},
        limits=Limits(wall_clock_seconds=120),
    )
    result = launch(spec, on_event=received.append, client=docker_client)

    assert result.outcome is Outcome.COMPLETED, result.captured.stderr.read_text()[-2000:]
    output = next(e for e in received if e["type"] == "resolveToolResults")
    text = output["toolResults"][0]["result"][0]["text"]
    assert "environ=1" in text and "stdout=0" not in text, text
    assert "cannot create /proc/1/fd/1: Permission denied" in text
    assert "zombies=0" in text, text
    assert secret not in (workspace / "pid1-environ").read_text(errors="replace")
    assert secret not in result.captured.events.read_text()
    assert not [e for e in received if e.get("service") == "forged"]
    assert leftovers() == []
