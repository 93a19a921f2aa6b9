"""Client methods for host procedures and detached jobs (issue 7).

    with kiln.Client() as c:
        out = c.run_procedure("uptime", ["web1", "web2"], timeout=10, retries=1)
        print(out.result, out.message, out.failed_hosts)   # partial 1 of 2 hosts failed ['web2']
        job = c.run_procedure("reboot", ["web1"], detach=True).data["job"]
        ...                                                  # later, from any connection:
        print(c.job_wait(job, timeout=600).result)
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence

from .protocol import ProcedureOutput


def _same(out: ProcedureOutput) -> ProcedureOutput:
    return out


class JobsMixin:
    """Mixed into kiln.Client and kiln.AsyncClient."""

    _call_then: Callable[..., Any]

    def run_procedure(self, name: str, hosts: Sequence[str], *, timeout: Optional[float] = None,
                      retries: int = 0, progress: Optional[Callable[[Dict[str, Any]], None]] = None,
                      detach: bool = False) -> ProcedureOutput:
        """Runs the configured procedure `name` on every host.  Returns the
        reply: result "success", "partial" or "failure", failed_hosts, and
        data["hosts"][host] = {ok, attempts, exit_code or signal, duration_ms,
        stdout_tail, stderr_tail}.  `timeout` is per attempt; `progress` is
        called with {done, total, host, ok, attempts} as each host finishes.
        With detach=True the reply is result "accepted" and data["job"] is the
        handle for job_status/job_wait/job_cancel.  Errors (unknown procedure,
        bad host name, forbidden) raise KilnError subclasses."""
        if isinstance(hosts, (str, bytes)):
            raise TypeError("hosts must be a list of host names, not a string")
        return self._call_then(name, None, _same, timeout=timeout, retries=retries,
                               host_list=list(hosts), progress=progress, detach=detach)

    def detach(self, action: str, args: Optional[Dict[str, Any]] = None, **kw: Any) -> int:
        """Starts any action as a detached job and returns its handle."""
        return self._call_then(action, args, lambda o: int(o.data["job"]), detach=True, **kw)

    def job_status(self, job: int) -> Dict[str, Any]:
        """{job, action, job_id, state ("running", "finished", "interrupted"),
        created, uid, progress?, finished?, result?, reply?}."""
        return self._call_then("job.status", {"job": job}, lambda o: o.data)

    def job_wait(self, job: int, timeout: Optional[float] = None, *,
                 check: bool = True) -> ProcedureOutput:
        """Waits for a detached job and returns its final reply.  Raises
        kiln.Timeout if it is still running after `timeout` seconds (default:
        the daemon's default_timeout); with check=True an error reply of the
        job itself raises its KilnError subclass."""
        args: Dict[str, Any] = {"job": job}
        if timeout is not None:
            args["timeout"] = timeout

        def reply(o: ProcedureOutput) -> ProcedureOutput:
            out = ProcedureOutput.from_dict(o.data["reply"])
            return out.raise_for_error() if check else out
        return self._call_then("job.wait", args, reply)

    def job_cancel(self, job: int) -> bool:
        """Cancels a running detached job; False if it was not running."""
        return self._call_then("job.cancel", {"job": job}, lambda o: bool(o.data["cancelled"]))

    def job_list(self) -> List[Dict[str, Any]]:
        """Detached jobs this user may see (root: all), oldest first."""
        return self._call_then("job.list", None, lambda o: list(o.data["jobs"]))
