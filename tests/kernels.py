"""A live kernel driven message by message, as JupyterLab drives it (cell ids in the metadata)."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from queue import Empty
from typing import Any

from nbcov.kernel import kernel_manager


class LiveKernel:
    """One ipykernel process; `run()` sends an execute_request with JupyterLab's `cellId` metadata."""

    def __init__(self, cwd: Path, env: dict[str, str] | None = None) -> None:
        # Twice at most, with new ports, as `nbcov run` does: jupyter_client picks free ports before the
        # kernel binds them, and under load another process can take one in between ("Address already
        # in use": the kernel dies before it answers; seen in CI).
        for attempt in (1, 2):
            self.km = kernel_manager(blocking=True)
            self.km.start_kernel(cwd=str(cwd), env={**os.environ, **(env or {})})
            self.kc = self.km.client()
            self.kc.start_channels()
            try:
                self.kc.wait_for_ready(timeout=60)
                return
            except RuntimeError:
                if attempt == 2 or self.km.is_alive():
                    raise
                self.kc.stop_channels()
                self.km.cleanup_resources()

    def send(self, code: str, cell_id: str | None = None, *, stop_on_error: bool = True) -> str:
        """Send an execute_request as JupyterLab does, without waiting for it; returns its msg_id."""
        content = {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                   "allow_stdin": False, "stop_on_error": stop_on_error}
        metadata = {"cellId": cell_id} if cell_id else {}
        msg = self.kc.session.msg("execute_request", content, metadata=metadata)
        self.kc.shell_channel.send(msg)
        return str(msg["header"]["msg_id"])

    def run(self, code: str, cell_id: str | None = None, timeout: float = 60) -> dict[str, Any]:
        # stop_on_error=False: this waits for each reply, so there is no queue to abort, and an
        # error leaves ipykernel aborting until its loop turns: the next request, sent
        # at once, could come back "aborted", unrun and without output (seen at the ipykernel floor).
        msg_id = self.send(code, cell_id, stop_on_error=False)
        outputs: list[dict[str, Any]] = []
        while True:
            try:
                reply = self.kc.get_iopub_msg(timeout=timeout)
            except Empty:
                raise TimeoutError(f"no answer to {code!r}") from None
            if reply["parent_header"].get("msg_id") != msg_id:
                continue
            kind = reply["msg_type"]
            if kind == "status" and reply["content"]["execution_state"] == "idle":
                break
            if kind in ("stream", "execute_result", "error", "display_data"):
                outputs.append({"type": kind, **reply["content"]})
        # The reply to this request: `wait_for_ready` may have left extra kernel_info replies queued.
        shell_reply = self.kc.get_shell_msg(timeout=timeout)
        while shell_reply["parent_header"].get("msg_id") != msg_id:
            shell_reply = self.kc.get_shell_msg(timeout=timeout)
        return {"status": shell_reply["content"]["status"], "outputs": outputs,
                "text": "".join(o.get("text", "") for o in outputs if o["type"] == "stream")}

    def shutdown(self) -> None:
        """A polite shutdown, as the frontend's "Shut Down Kernel" (idempotent)."""
        if self.km.has_kernel:
            self.kc.stop_channels()
            self.km.shutdown_kernel(now=False)

    def kill(self) -> None:
        """SIGKILL: no atexit handlers, no signal handlers run in the kernel."""
        self.kc.stop_channels()
        process = self.km.provisioner.process
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=20)
        self.km.shutdown_kernel(now=True)
