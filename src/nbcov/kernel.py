"""Kernels of the current Python environment, started without any installed kernel spec."""

from __future__ import annotations

import sys
from typing import Any

from jupyter_client.kernelspec import KernelSpec, KernelSpecManager, NoSuchKernel
from jupyter_client.manager import AsyncKernelManager, KernelManager

#: The kernel name meaning "ipykernel on the Python running nbcov".
CURRENT_PYTHON = "nbcov-current-python"


class CurrentPythonKernelSpecs(KernelSpecManager):
    """Installed kernel specs, plus one for `sys.executable` that needs no installing.

    CI machines and fresh virtualenvs often have no kernel spec, or a `python3` spec that points at
    another interpreter; running notebooks in the interpreter that runs nbcov avoids both.
    """

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        if kernel_name == CURRENT_PYTHON:
            from ipykernel.kernelspec import get_kernel_dict

            # ipykernel's own spec for this Python, so that what it declares (a debugger, CurveZMQ
            # transport encryption in ipykernel 7) is what the manager sees.
            spec = get_kernel_dict()
            return KernelSpec(
                argv=spec["argv"],
                display_name=f"Python {sys.version.split()[0]} (nbcov)",
                language="python",
                resource_dir="",
                metadata=spec.get("metadata", {}),
            )
        try:
            return super().get_kernel_spec(kernel_name)
        except NoSuchKernel:
            raise NoSuchKernel(kernel_name) from None


def kernel_manager(kernel_name: str = CURRENT_PYTHON, *, blocking: bool = False, **kwargs: Any) -> KernelManager:
    """A kernel manager for `kernel_name` (default: the current Python).

    Asynchronous by default, as nbclient needs: with a blocking one, nbclient's waits for output
    block its event loop, and a kernel that dies goes unnoticed until the wait times out.
    """
    cls = KernelManager if blocking else AsyncKernelManager
    km = cls(kernel_name=kernel_name, kernel_spec_manager=CurrentPythonKernelSpecs(), **kwargs)
    if "transport_encryption" not in kwargs and _curve_available(km):
        # Encrypt the kernel's traffic when its spec says it can (jupyter_client >= 8.10 provisions the
        # keys): the cells' code and outputs never cross a socket in plain text, and ipykernel 7 stops
        # warning about it on every kernel start.
        km.transport_encryption = "auto"
    return km


def _curve_available(km: KernelManager) -> bool:
    import zmq

    return km.has_trait("transport_encryption") and bool(zmq.has("curve"))
