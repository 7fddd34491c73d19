# SPDX-License-Identifier: Apache-2.0
"""dynvram.torch.offload on the host backend with CPU torch: the cases
per-module ownership got wrong, each compared with the module run without
offload, streaming and fault protocol both, under budgets that force
streaming:
  - tied parameters (one Parameter in two modules, as with Hugging Face's
    tie_word_embeddings);
  - parameters read outside their own module's forward (a parent reading a
    child's weight, an orphan parameter of the parent);
  - buffers (shared between modules, BatchNorm statistics);
  - a module called twice per forward; a weight read only for its dtype;
  - check=True refusing a read the learning forward did not see."""
import os

import pytest

import dynvram

if os.environ.get("DV_TEST_NO_TORCH"):
    pytest.skip("torch tests are off in sanitizer builds", allow_module_level=True)
torch = pytest.importorskip("torch")
import dynvram.torch as dvt  # noqa: E402

KIB = 1024


class Tied(torch.nn.Module):
    """An embedding and a head sharing one Parameter, an orphan scale read
    by the parent, a buffer shared by two modules, a child's weight read by
    the parent, BatchNorm in eval mode, a block called twice."""

    def __init__(self, vocab=64, dim=128, layers=4):
        super().__init__()
        g = torch.Generator().manual_seed(3)
        self.emb = torch.nn.Embedding(vocab, dim)
        self.layers = torch.nn.ModuleList(
            [torch.nn.Linear(dim, dim) for _ in range(layers)])
        self.shared = torch.nn.Linear(dim, dim)
        self.bn = torch.nn.BatchNorm1d(dim)
        self.head = torch.nn.Linear(dim, vocab, bias=False)
        self.head.weight = self.emb.weight            # tied
        self.scale = torch.nn.Parameter(torch.tensor(0.75))  # orphan
        self.proj = torch.nn.Linear(dim, dim)          # read by the parent
        bias = torch.randn(dim, generator=g)
        self.register_buffer("offset", bias)
        self.layers[0].register_buffer("offset", bias)  # the same tensor
        with torch.no_grad():
            for p in self.parameters():
                d = p.shape[-1] if p.dim() else 1
                p.copy_(torch.randn(p.shape, generator=g) / d ** 0.5)
            self.bn.running_mean.copy_(torch.randn(dim, generator=g))
            self.bn.running_var.copy_(torch.rand(dim, generator=g) + 0.5)

    def forward(self, ids):
        h = self.emb(ids) + self.offset
        assert self.head.weight.dtype == h.dtype  # metadata only
        for i, layer in enumerate(self.layers):
            h = torch.relu(layer(h))
            if i == 0:
                h = h + self.layers[0].offset
        h = self.shared(h)
        h = self.shared(torch.tanh(h))                 # called twice
        h = torch.nn.functional.linear(h, self.proj.weight)  # parent reads
        b, t, d = h.shape
        h = self.bn(h.reshape(b * t, d)).reshape(b, t, d)
        return self.head(h * self.scale)


def _run(model, ids, n):
    with torch.no_grad():
        return [model(ids).clone() for _ in range(n)]


@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize("limit_kib", [4096, 512, 320])
def test_tied_orphan_buffers_equal_the_plain_module(stream, limit_kib):
    model = Tied().eval()
    ids = torch.randint(0, 64, (3, 5), generator=torch.Generator().manual_seed(4))
    ref = _run(model, ids, 1)[0]
    dev = dynvram.Device("host", page_size=16 * KIB,
                         vram_limit=limit_kib * KIB)
    off = dvt.offload(model, dv_device=dev, stream=stream, check=True)
    outs = _run(model, ids, 5)
    for k, y in enumerate(outs):
        assert torch.equal(y, ref), "forward %d differs" % k
    st = off.stats()
    # The tied weight is one tensor, bound by both of its modules; every
    # parameter is read except proj.bias.
    tensors = {id(t.param) for c in off.calls for t in c.tensors}
    assert len(tensors) == len(list(model.parameters())) - 1
    assert id(model.proj.bias) not in tensors
    emb_calls = [c for c in off.calls
                 if any(t.param is model.emb.weight for t in c.tensors)]
    assert [c.module for c in emb_calls] == [model.emb, model.head]
    # The parent's own reads: the orphan and its child's weight.
    root = [c for c in off.calls if c.module is model]
    assert len(root) == 1
    names = sorted(t.name for t in root[0].tensors)
    assert names == ["proj.weight", "scale"]
    # A module called twice is two calls; the dtype check bound nothing.
    assert sum(c.module is model.shared for c in off.calls) == 2
    assert all(c.module is not model.head or len(c.tensors) == 1
               for c in off.calls)
    # Buffers: on the device once, still shared.
    assert model.offset is model.layers[0].offset
    if stream:
        sched = st["schedule"]
        assert sched["acquires"] == 4 * st["uses"]
        if limit_kib < 400:
            assert sched["streamed"] > 0, "the model (~420 KiB) does not fit"
        else:
            # It fits: all resident, and no ring is held.
            assert sched["streamed"] == 0 and st["ring_bytes"] == 0
    elif limit_kib < 400:
        assert st["streamed"] > 0, "the model (~420 KiB) does not fit"
    assert st["pinned_bytes"] == 0
    dev.check()
    off.remove()
    assert torch.equal(_run(model, ids, 1)[0], ref)


def test_parent_held_ranges_are_kept_resident():
    # The root reads proj.weight around its children's calls: its range
    # is held while they run, so the plan keeps it resident (a held slot
    # would starve the ring).
    model = Tied().eval()
    ids = torch.randint(0, 64, (2, 3))
    dev = dynvram.Device("host", page_size=16 * KIB, vram_limit=512 * KIB)
    off = dvt.offload(model, dv_device=dev)
    _run(model, ids, 2)
    root = [c for c in off.calls if c.module is model][0]
    plan = off.schedule.plan()
    for n in range(len(root.tensors)):
        assert plan[root.first_use + n] & dynvram.USE_PLANNED_RESIDENT
    off.remove()


def test_check_refuses_a_read_the_learning_forward_did_not_see():
    class Branchy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = torch.nn.Linear(8, 8)
            self.extra = torch.nn.Parameter(torch.ones(8))
            self.flag = False

        def forward(self, x):
            y = self.a(x)
            if self.flag:
                y = y * self.extra  # never seen while learning
            return y

    m = Branchy()
    dev = dynvram.Device("host", page_size=16 * KIB, vram_limit=1 << 20)
    off = dvt.offload(m, dv_device=dev, check=True)
    with torch.no_grad():
        m(torch.randn(2, 8))
        m.flag = True
        with pytest.raises(RuntimeError, match="extra"):
            m(torch.randn(2, 8))
        m.flag = False
        m(torch.randn(2, 8))
    assert dev.stats().pinned_bytes == 0
    off.remove()


def test_unused_parameters_stay_on_the_host():
    class Partial(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.used = torch.nn.Linear(8, 8)
            self.spare = torch.nn.Linear(8, 8)

        def forward(self, x):
            return self.used(x)

    m = Partial()
    before = m.spare.weight.detach().clone()
    dev = dynvram.Device("host", page_size=16 * KIB, vram_limit=1 << 20)
    off = dvt.offload(m, dv_device=dev)
    with torch.no_grad():
        m(torch.randn(2, 8))
        m(torch.randn(2, 8))
    assert torch.equal(m.spare.weight, before)
    assert off.stats()["uses"] == 2
    off.remove()


def test_remove_before_any_forward():
    m = Tied()
    dev = dynvram.Device("host", page_size=16 * KIB, vram_limit=1 << 20)
    off = dvt.offload(m, dv_device=dev)
    off.remove()
    assert off.device.released
    ids = torch.randint(0, 64, (2, 3))
    with torch.no_grad():
        m.eval()(ids)  # plain module again
