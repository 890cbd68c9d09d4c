"""pytorch-fid's FID Inception v3, built offline with seeded random weights, at full or reduced width.

Shared by Scripts/golden/make_fid_inception_golden.py (the reduced-width fixture of the Swift tests),
Scripts/fid_inception_parity.py and Scripts/bench_fid_inception.py. Needs the development venv
(torch, torchvision 0.16.2, pytorch-fid 0.3.0; see Scripts/dev-venv.sh). Nothing is downloaded:
pytorch-fid's `fid_inception_v3` is called with its weight download replaced by a state_dict made
here, so the network is pytorch-fid's own code with other weights.

Width reduction keeps the topology: torchvision's blocks take a `conv_block` factory, and the one
given here divides every channel count but the RGB input by `divisor`; the FID blocks are
pytorch-fid's classes (`FIDInceptionA`, ...) initialised through that factory, so their forward
passes (count_include_pad=False average pooling, Mixed_7c's max pooling) are pytorch-fid's.
"""
import torch
import torch.nn as nn
import torchvision
from torchvision.models import inception as tv
import pytorch_fid.inception as fid


def reduced_fid_inception(divisor, classes=1008):
    """fid_inception_v3's modules with every channel count divided by `divisor` (no weights loaded)."""
    def conv_block(i, o, **kw):
        return tv.BasicConv2d(i if i == 3 else i // divisor, o // divisor, **kw)

    def fid_block(cls, *args):
        m = cls.__new__(cls)
        cls.__mro__[1].__init__(m, *args, conv_block=conv_block)
        return m

    net = tv.Inception3(num_classes=classes, aux_logits=False, init_weights=False,
                        inception_blocks=[conv_block, tv.InceptionA,
                                          lambda i: tv.InceptionB(i, conv_block=conv_block),
                                          tv.InceptionC,
                                          lambda i: tv.InceptionD(i, conv_block=conv_block),
                                          tv.InceptionE, tv.InceptionAux])
    net.Mixed_5b = fid_block(fid.FIDInceptionA, 192, 32)
    net.Mixed_5c = fid_block(fid.FIDInceptionA, 256, 64)
    net.Mixed_5d = fid_block(fid.FIDInceptionA, 288, 64)
    net.Mixed_6b = fid_block(fid.FIDInceptionC, 768, 128)
    net.Mixed_6c = fid_block(fid.FIDInceptionC, 768, 160)
    net.Mixed_6d = fid_block(fid.FIDInceptionC, 768, 160)
    net.Mixed_6e = fid_block(fid.FIDInceptionC, 768, 192)
    net.Mixed_7b = fid_block(fid.FIDInceptionE_1, 1280)
    net.Mixed_7c = fid_block(fid.FIDInceptionE_2, 2048)
    net.fc = nn.Linear(2048 // divisor, classes)
    return net


def seeded_state_dict(net, seed, calibration):
    """Random weights for `net` that keep activations sane through ~95 layers.

    Convolutions are Kaiming-normal (ReLU gain); batch-norm scales U(0.5, 1.5), shifts N(0, 0.2);
    the running statistics are then the actual statistics of `calibration` images [N, 3, 299, 299]
    in [-1, 1] (one pass in training mode with cumulative averaging), so every unit's input is
    normalised as in a trained network. `fc` is N(0, 1/sqrt(in)) with zero bias.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, m in net.named_modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5)
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.2)
                m.reset_running_stats()
                m.momentum = None
            elif isinstance(m, nn.Linear):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) / m.in_features ** 0.5)
                m.bias.zero_()
        net.train()
        net(calibration)
        net.eval()
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def pytorch_fid_model(state_dict, divisor=1):
    """pytorch-fid's InceptionV3 (2048-d pool features, its resize and scaling) with `state_dict`.

    At full width this is exactly `pytorch_fid.inception.InceptionV3()`, with the weight download
    replaced by `state_dict`; at a reduced width the wrapper is pytorch-fid's and the Inception
    inside it `reduced_fid_inception(divisor)`.
    """
    saved = (fid.load_state_dict_from_url, fid.fid_inception_v3)
    try:
        fid.load_state_dict_from_url = lambda *a, **k: state_dict
        if divisor != 1:
            classes = state_dict["fc.weight"].shape[0]

            def build():
                net = reduced_fid_inception(divisor, classes)
                net.load_state_dict(state_dict)
                return net
            fid.fid_inception_v3 = build
        model = fid.InceptionV3([fid.InceptionV3.BLOCK_INDEX_BY_DIM[2048]])
    finally:
        fid.load_state_dict_from_url, fid.fid_inception_v3 = saved
    return model.eval()


def features_and_logits(model, state_dict, images01):
    """pytorch-fid's features [N, d] of images [N, 3, H, W] in [0, 1], and the logits of `fc` on them."""
    with torch.no_grad():
        f = model(images01)[0].squeeze(3).squeeze(2)
        logits = f @ state_dict["fc.weight"].T + state_dict["fc.bias"]
    return f, logits
