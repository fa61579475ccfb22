"""PyTorch mirrors of arpix's model families: the hand-off to PyTorch for training on many GPUs.

The contract every family's mirror keeps (the export, the import and the tests rely on it):

* One module per family, ``python/arpix_torch/<family>.py`` (a Python identifier: ``pixelcnn``,
  ``gated_pixelcnn``, ``pixelcnnpp``, ...), listed in ``FAMILIES`` below under every arpix model
  ``kind`` it implements.
* The module defines ``class Model(torch.nn.Module)`` whose constructor takes arpix's *resolved*
  model config, the JSON dict ``arpix info --json`` / a checkpoint's ``config.model`` holds (every
  default filled in), and builds the same network.
* ``Model().state_dict()`` has exactly the keys and shapes of arpix's
  ``model.stateDict({ layout: 'pytorch' })``: the same dotted names, convolution weights as
  PyTorch's ``[Cout, Cin, kH, kW]`` (transposed convolutions ``[Cin, Cout, kH, kW]``), everything
  else as in arpix. Masks are not state: they are rebuilt from the config (non-persistent
  buffers), as arpix does, so ``load_state_dict(strict=True)`` works both ways.
* ``Model.forward(images, labels=None)`` takes ``LongTensor [N, H, W, C]`` of integer levels
  (channels last, as arpix) and optional ``LongTensor [N]`` class labels, and returns log p(x) in
  nats per image, ``[N]``, in the dtype of the parameters. Training minimises
  ``-forward(x).mean() / (H * W * C * ln 2)``, arpix's loss (bits per dimension).
* The network computes exactly what arpix computes (same padding, shifts, masks, gates, head):
  the same weights give the same log-likelihood within 1e-5 relative, which arpix's tests check
  for every family on random and trained weights, grey and colour, with labels.

Adding a family: write ``python/arpix_torch/<family>.py`` with ``Model`` as above (the helpers in
``common.py`` cover convolutions with arpix's padding, masks, conditioning and the likelihood
heads), add its kind(s) to ``FAMILIES``, and give each kind a few small configs (grey, colour,
with labels, each head it supports) in ``CASES`` of ``src/export/torch.test.ts``: that test runs for
every kind of arpix's family table and fails for a kind without cases. It checks the keys, the
log-likelihood (random and trained weights) and the loss after one optimiser step against arpix.
``arpix export``/``import`` and ``train.py`` then work for the family unchanged; a family with
weights PyTorch code usually stores differently (masked kernels, fused gates) gives its family entry
(``src/models/<family>/family.ts``) a ``maskedImport`` adapter. The entry's ``mirror`` names the
module here, and ``src/models/families.test.ts`` checks ``FAMILIES`` against arpix's family table.
"""

import importlib

#: arpix model kind -> module of this package that mirrors it.
FAMILIES = {
    "pixelcnn": "pixelcnn",
    "gated-pixelcnn": "gated_pixelcnn",
    "pixelcnn++": "pixelcnnpp",
    "image-transformer": "image_transformer",
    "image-gpt": "image_gpt",
    "row-lstm": "pixelrnn",
    "diagonal-bilstm": "pixelrnn",
}


def model_class(kind):
    """The ``Model`` class mirroring arpix kind ``kind``."""
    if kind not in FAMILIES:
        raise KeyError(f"arpix_torch has no mirror of model kind '{kind}' (mirrored: {', '.join(sorted(FAMILIES))})")
    return importlib.import_module(f"{__name__}.{FAMILIES[kind]}").Model


def build_model(config):
    """The mirror of arpix's resolved model config ``config`` (a dict with ``kind``)."""
    return model_class(config["kind"])(config)
