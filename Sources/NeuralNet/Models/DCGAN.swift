import TensorRuntime

/// DCGAN (Radford et al., 2016) generators and discriminators, laid out like pytorch/examples'
/// `nn.Sequential` so that `state_dict` names (`0.weight`, `1.running_mean`, ...) match.
public enum DCGAN {
    /// Depth for a power-of-two resolution: 32 -> 3 upsampling blocks after the 4x4 projection.
    public static func depth(resolution: Int) throws -> Int {
        guard resolution >= 8, resolution & (resolution - 1) == 0 else {
            throw TensorError("DCGAN resolution must be a power of two >= 8, found \(resolution)")
        }
        return resolution.trailingZeroBitCount - 2
    }

    /// G: ConvT(latent -> w*2^(d-1), k4 s1 p0) to 4x4, then (BN, ReLU, ConvT k4 s2 p1) halving
    /// channels and doubling size, then BN, ReLU, ConvT to `channels`, tanh. Input [N, latent, 1, 1].
    public static func generator(latent: Int, channels: Int, resolution: Int, width: Int = 64, batchNorm: Bool = true,
                                 rng: inout PhiloxRandom) throws -> Sequential {
        let d = try depth(resolution: resolution)
        var layers: [any Layer] = [try ConvTranspose2D(latent, width << (d - 1), kernel: 4, stride: 1, padding: 0, bias: !batchNorm, rng: &rng)]
        for i in stride(from: d - 1, through: 1, by: -1) {
            if batchNorm { layers.append(BatchNorm(width << i)) }
            layers.append(Activation(.relu))
            layers.append(try ConvTranspose2D(width << i, width << (i - 1), kernel: 4, stride: 2, padding: 1, bias: !batchNorm, rng: &rng))
        }
        if batchNorm { layers.append(BatchNorm(width)) }
        layers += [Activation(.relu), try ConvTranspose2D(width, channels, kernel: 4, stride: 2, padding: 1, bias: !batchNorm, rng: &rng),
                   Activation(.tanh)]
        let net = Sequential(layers)
        initialize(net, rng: &rng)
        return net
    }

    /// D: Conv(channels -> w, k4 s2 p1), LeakyReLU(0.2), then (Conv k4 s2 p1 doubling channels,
    /// BN, LeakyReLU) down to 4x4, then Conv(k4 s1 p0) to one logit per image, flattened to [N].
    public static func discriminator(channels: Int, resolution: Int, width: Int = 64, batchNorm: Bool = true,
                                     rng: inout PhiloxRandom) throws -> Sequential {
        let d = try depth(resolution: resolution)
        var layers: [any Layer] = [try Conv2D(channels, width, kernel: 4, stride: 2, padding: 1, bias: !batchNorm, rng: &rng),
                                   Activation(.leakyRelu(0.2))]
        for i in 1..<d {
            layers.append(try Conv2D(width << (i - 1), width << i, kernel: 4, stride: 2, padding: 1, bias: !batchNorm, rng: &rng))
            if batchNorm { layers.append(BatchNorm(width << i)) }
            layers.append(Activation(.leakyRelu(0.2)))
        }
        layers += [try Conv2D(width << (d - 1), 1, kernel: 4, stride: 1, padding: 0, bias: !batchNorm, rng: &rng), Reshape([])]
        let net = Sequential(layers)
        initialize(net, rng: &rng)
        return net
    }

    /// DCGAN initialisation: conv weights N(0, 0.02); batch-norm weights N(1, 0.02), biases 0.
    public static func initialize(_ net: Sequential, rng: inout PhiloxRandom) {
        for layer in net.layers {
            switch layer {
            case let c as Conv2D: fillNormal(c.weight, mean: 0, std: 0.02, rng: &rng)
            case let c as ConvTranspose2D: fillNormal(c.weight, mean: 0, std: 0.02, rng: &rng)
            case let b as BatchNorm:
                fillNormal(b.weight, mean: 1, std: 0.02, rng: &rng)
                b.bias.data.update(repeating: 0, count: b.bias.count)
            default: break
            }
        }
    }

    static func fillNormal(_ t: Tensor, mean: Float, std: Float, rng: inout PhiloxRandom) {
        let p = t.data
        for i in 0..<t.count { p[i] = mean + std * rng.nextNormal() }
    }
}

/// The tutorial notebook's MLP GAN on 28x28 images.
public enum MLPGAN {
    /// G: latent -> 256 -> 512 -> 1024 -> pixels, each hidden layer BatchNorm1d(momentum) and
    /// LeakyReLU(0.2), tanh output reshaped to [channels, size, size].
    public static func generator(latent: Int = 100, hidden: [Int] = [256, 512, 1024], channels: Int = 1, size: Int = 28,
                                 batchNormMomentum: Float? = 0.2, slope: Float = 0.2, rng: inout PhiloxRandom) throws -> Sequential {
        var layers: [any Layer] = []
        var width = latent
        for h in hidden {
            layers.append(try Linear(width, h, rng: &rng))
            if let m = batchNormMomentum { layers.append(BatchNorm(h, momentum: m, eps: 1e-5)) }
            layers.append(Activation(.leakyRelu(slope)))
            width = h
        }
        layers += [try Linear(width, channels * size * size, rng: &rng), Activation(.tanh), Reshape([channels, size, size])]
        return Sequential(layers)
    }

    /// D: flatten -> 512 -> 256 -> 1 with LeakyReLU(0.2), one logit per image ([N]).
    public static func discriminator(hidden: [Int] = [512, 256], channels: Int = 1, size: Int = 28, slope: Float = 0.2,
                                     rng: inout PhiloxRandom) throws -> Sequential {
        var layers: [any Layer] = [Reshape([channels * size * size])]
        var width = channels * size * size
        for h in hidden {
            layers.append(try Linear(width, h, rng: &rng))
            layers.append(Activation(.leakyRelu(slope)))
            width = h
        }
        layers += [try Linear(width, 1, rng: &rng), Reshape([])]
        return Sequential(layers)
    }
}
