"""The torchvision/lpips import shim (worldmodel/_compat.py), checked in fresh interpreters."""

import subprocess
import sys
import textwrap


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300)


def test_import_lpips_and_build_vgg_lpips():
    r = _run("""
        import torch
        from worldmodel._compat import import_lpips
        lpips = import_lpips()
        import torchvision
        m = lpips.LPIPS(net="vgg", pretrained=True, pnet_rand=True, verbose=False)
        x = torch.rand(2, 3, 32, 32) * 2 - 1
        d = m(x, x).flatten()
        assert torch.allclose(d, torch.zeros_like(d), atol=1e-6), d
        assert (m(x, -x).flatten() > 0).all()
        print("ok", torchvision.__version__)
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("ok")


def test_shim_only_when_needed_and_compiled_ops_fail_loudly():
    r = _run("""
        import torch
        from worldmodel._compat import ensure_torchvision_importable, torchvision_ops_loadable
        loadable = torchvision_ops_loadable()
        applied = ensure_torchvision_importable()
        assert applied == (not loadable), (applied, loadable)
        import torchvision
        if applied:
            assert not torchvision.extension._has_ops()
            try:
                torchvision.ops.nms(torch.rand(3, 4), torch.rand(3), 0.5)
            except RuntimeError as e:
                print("nms-error", str(e)[:40])
            else:
                raise SystemExit("nms ran without compiled ops")
        print("applied" if applied else "not-needed")
    """)
    assert r.returncode == 0, r.stderr
    # the shim's decision must follow whether torchvision's compiled ops load, probed in a fresh interpreter
    # of its own (not by the shim): applied exactly when they do not
    probe = _run("""
        try:
            import torchvision  # noqa: F401
            import torch
            torch.ops.torchvision.nms  # the compiled op itself
            print("ops-load")
        except Exception:  # noqa: BLE001 - any failure to import or find the op
            print("ops-fail")
    """)
    assert probe.returncode == 0, probe.stderr
    want = "not-needed" if probe.stdout.strip() == "ops-load" else "applied"
    assert r.stdout.strip().splitlines()[-1] == want, (r.stdout, probe.stdout)
