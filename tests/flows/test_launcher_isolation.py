"""Each test runs a script inside the real hardened container and asserts on what the
launcher's result and events say."""

from __future__ import annotations

import threading

import pytest

from flows.launcher import Limits, Outcome, launch
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
    assert (host["NetworkMode"], host["IpcMode"], host["Init"]) == ("none", "none", True)
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
