import TensorRuntime

/// How a model normalises between layers.
public enum Normalization: String, Sendable, CaseIterable {
    /// Batch norm after each hidden convolution (convolutions then have no bias).
    case batch
    /// Spectral norm on the weight of every convolution (with biases, no batch norm).
    case spectral
    /// Neither (convolutions with biases).
    case none
}

/// One convolution or transposed convolution of a DCGAN stack.
public struct ConvSpec: Sendable, Equatable {
    public var kernel: Int
    public var stride: Int
    public var padding: Int
    /// Transposed convolutions only.
    public var outputPadding: Int

    public init(kernel: Int, stride: Int, padding: Int, outputPadding: Int = 0) {
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.outputPadding = outputPadding
    }

    /// The DCGAN up- or downsampling step: kernel 4, stride 2, padding 1.
    public static let halving = ConvSpec(kernel: 4, stride: 2, padding: 1)
}

/// DCGAN (Radford et al., 2016) generators and discriminators, laid out like pytorch/examples'
/// `nn.Sequential` so that `state_dict` names (`0.weight`, `1.running_mean`, ...) match.
///
/// The standard stacks start (G) or end (D) at a `resolution / 2^depth` square, reached from or
/// reduced to 1x1 by a convolution with that kernel, and double or halve the size `depth` times
/// with kernel 4, stride 2, padding 1. With the default depth the square is 4x4 for powers of two
/// (pytorch/examples' DCGAN) and 7x7 at 28x28.
public enum DCGAN {
    /// The default number of stride-2 layers: halve while the size stays even and at least 4.
    public static func depth(resolution: Int) throws -> Int {
        guard resolution >= 4 else { throw TensorError("DCGAN resolution must be at least 4, found \(resolution)") }
        var d = 0
        while resolution % (2 << d) == 0 && resolution >> (d + 1) >= 4 { d += 1 }
        guard d >= 1 else {
            throw TensorError("DCGAN resolution \(resolution) cannot be halved to a square of 4 or more; use an even size")
        }
        return d
    }

    /// Checks a depth for a resolution and returns the starting square.
    static func startSize(resolution: Int, depth: Int) throws -> Int {
        guard depth >= 1, depth < 16, resolution % (1 << depth) == 0 else {
            throw TensorError("DCGAN resolution \(resolution) is not divisible by 2^\(depth) (depth \(depth))")
        }
        return resolution >> depth
    }

    /// G: ConvT(latent -> w*2^(d-1), kernel r0, s1, p0) to r0 x r0, then (BN, ReLU, ConvT k4 s2 p1)
    /// halving channels and doubling size, then BN, ReLU, ConvT to `channels`, tanh. Input [N, latent, 1, 1].
    public static func generator(latent: Int, channels: Int, resolution: Int, width: Int = 64, depth: Int? = nil,
                                 norm: Normalization = .batch, conditioning: ClassConditioning? = nil,
                                 rng: inout PhiloxRandom) throws -> Sequential {
        let d = try depth ?? self.depth(resolution: resolution)
        let start = try startSize(resolution: resolution, depth: d)
        let features = [latent] + (0..<d).map { width << (d - 1 - $0) } + [channels]
        let specs = [ConvSpec(kernel: start, stride: 1, padding: 0)] + Array(repeating: ConvSpec.halving, count: d)
        return try generator(features: features, specs: specs, norm: norm, conditioning: conditioning, rng: &rng)
    }

    /// The pytorch/examples signature: batch norm or none.
    public static func generator(latent: Int, channels: Int, resolution: Int, width: Int = 64, batchNorm: Bool,
                                 rng: inout PhiloxRandom) throws -> Sequential {
        try generator(latent: latent, channels: channels, resolution: resolution, width: width,
                      norm: batchNorm ? .batch : .none, rng: &rng)
    }

    /// A generator of transposed convolutions `features[i] -> features[i + 1]` with `specs[i]`;
    /// each but the last is followed by batch norm (when `norm` is `.batch`) and ReLU, the last by tanh.
    /// Conditioned by `concat`, a class embedding of `classes` features is joined to the latent
    /// first; by `cbn`, the batch norms are conditional (`ConditionalBatchNorm`).
    public static func generator(features: [Int], specs: [ConvSpec], norm: Normalization = .batch,
                                 conditioning: ClassConditioning? = nil, rng: inout PhiloxRandom) throws -> Sequential {
        precondition(features.count == specs.count + 1 && !specs.isEmpty, "one spec per layer")
        let features = try Self.conditionedInput(features, conditioning, norm: norm, generator: true)
        var layers: [any Layer] = []
        if let c = conditioning, let input = try Self.inputLayer(c, generator: true, rng: &rng) { layers.append(input) }
        for (i, s) in specs.enumerated() {
            let conv = try ConvTranspose2D(features[i], features[i + 1], kernel: s.kernel, stride: s.stride, padding: s.padding,
                                           outputPadding: s.outputPadding, bias: norm != .batch, rng: &rng)
            layers.append(norm == .spectral ? SpectralNorm(conv, rng: &rng) : conv)
            if i < specs.count - 1 {
                if norm == .batch { layers.append(Self.batchNorm(features[i + 1], conditioning)) }
                layers.append(Activation(.relu))
            }
        }
        layers.append(Activation(.tanh))
        let net = Sequential(layers)
        net.convolutionResultsChannelsLast = norm != .spectral && conditioning == nil
        initialize(net, rng: &rng)
        return net
    }

    /// D: Conv(channels -> w, k4 s2 p1), LeakyReLU(0.2), then (Conv k4 s2 p1 doubling channels,
    /// BN, LeakyReLU) down to r0 x r0, then Conv(kernel r0, s1, p0) to one logit per image, flattened to [N].
    public static func discriminator(channels: Int, resolution: Int, width: Int = 64, depth: Int? = nil,
                                     norm: Normalization = .batch, conditioning: ClassConditioning? = nil,
                                     rng: inout PhiloxRandom) throws -> Sequential {
        let d = try depth ?? self.depth(resolution: resolution)
        let start = try startSize(resolution: resolution, depth: d)
        let features = [channels] + (0..<d).map { width << $0 } + [1]
        let specs = Array(repeating: ConvSpec.halving, count: d) + [ConvSpec(kernel: start, stride: 1, padding: 0)]
        return try discriminator(features: features, specs: specs, norm: norm, conditioning: conditioning, rng: &rng)
    }

    /// The pytorch/examples signature: batch norm or none.
    public static func discriminator(channels: Int, resolution: Int, width: Int = 64, batchNorm: Bool,
                                     rng: inout PhiloxRandom) throws -> Sequential {
        try discriminator(channels: channels, resolution: resolution, width: width, norm: batchNorm ? .batch : .none, rng: &rng)
    }

    /// A discriminator of convolutions `features[i] -> features[i + 1]` with `specs[i]`: LeakyReLU(0.2)
    /// after each but the last, batch norm before it from the second on (when `norm` is `.batch`),
    /// and the last output flattened to one logit per image (it must be 1x1 with one channel).
    /// Conditioned by `concat`, the one-hot class joins the image as extra channels; by
    /// `projection` or `ac`, the last convolution becomes the `psi` of a `ClassHead`.
    public static func discriminator(features: [Int], specs: [ConvSpec], norm: Normalization = .batch,
                                     conditioning: ClassConditioning? = nil, rng: inout PhiloxRandom) throws -> Sequential {
        precondition(features.count == specs.count + 1 && !specs.isEmpty, "one spec per layer")
        let features = try Self.conditionedInput(features, conditioning, norm: norm, generator: false)
        var layers: [any Layer] = []
        if let c = conditioning, let input = try Self.inputLayer(c, generator: false, rng: &rng) { layers.append(input) }
        for (i, s) in specs.enumerated() {
            let conv = try Conv2D(features[i], features[i + 1], kernel: s.kernel, stride: s.stride, padding: s.padding,
                                  bias: norm != .batch, rng: &rng)
            let layer: any Layer = norm == .spectral ? SpectralNorm(conv, rng: &rng) : conv
            if i == specs.count - 1, let head = try Self.head(conditioning, psi: layer, features: features[i], rng: &rng) {
                layers.append(head)
                break
            }
            layers.append(layer)
            if i < specs.count - 1 {
                if norm == .batch && i > 0 { layers.append(BatchNorm(features[i + 1])) }
                layers.append(Activation(.leakyRelu(0.2)))
            }
            if i == specs.count - 1 { layers.append(Reshape([])) }
        }
        let net = Sequential(layers)
        net.convolutionResultsChannelsLast = norm != .spectral && conditioning == nil
        initialize(net, rng: &rng)
        return net
    }

    /// DCGAN initialisation: conv weights N(0, 0.02); batch-norm weights N(1, 0.02), biases 0
    /// (a class head's `psi` like a convolution; conditional layers keep their own start).
    public static func initialize(_ net: Sequential, rng: inout PhiloxRandom) {
        func initialize(_ layer: any Layer) {
            switch layer {
            case let c as Conv2D: fillNormal(c.weight, mean: 0, std: 0.02, rng: &rng)
            case let c as ConvTranspose2D: fillNormal(c.weight, mean: 0, std: 0.02, rng: &rng)
            case let s as SpectralNorm: fillNormal(s.layer.weight, mean: 0, std: 0.02, rng: &rng)
            case let b as BatchNorm:
                fillNormal(b.weight, mean: 1, std: 0.02, rng: &rng)
                b.bias.data.update(repeating: 0, count: b.bias.count)
            case let h as ClassHead: initialize(h.psi)
            default: break
            }
        }
        for layer in net.layers { initialize(layer) }
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
    /// Conditioned as `DCGAN.generator(features:...)`: `concat` joins a class embedding to the
    /// latent, `cbn` makes the batch norms conditional.
    public static func generator(latent: Int = 100, hidden: [Int] = [256, 512, 1024], channels: Int = 1, size: Int = 28,
                                 batchNormMomentum: Float? = 0.2, slope: Float = 0.2, conditioning: ClassConditioning? = nil,
                                 rng: inout PhiloxRandom) throws -> Sequential {
        let norm: Normalization = batchNormMomentum == nil ? .none : .batch
        var width = try DCGAN.conditionedInput([latent], conditioning, norm: norm, generator: true)[0]
        var layers: [any Layer] = []
        if let c = conditioning, let input = try DCGAN.inputLayer(c, generator: true, rng: &rng) { layers.append(input) }
        for h in hidden {
            layers.append(try Linear(width, h, rng: &rng))
            if let m = batchNormMomentum {
                layers.append(conditioning?.method == .cbn ? ConditionalBatchNorm(h, classes: conditioning!.classes, momentum: m, eps: 1e-5)
                                                           : BatchNorm(h, momentum: m, eps: 1e-5))
            }
            layers.append(Activation(.leakyRelu(slope)))
            width = h
        }
        layers += [try Linear(width, channels * size * size, rng: &rng), Activation(.tanh), Reshape([channels, size, size])]
        return Sequential(layers)
    }

    /// D: flatten -> 512 -> 256 -> 1 with LeakyReLU(0.2), one logit per image ([N]).
    /// With `spectralNorm`, every Linear is wrapped in `SpectralNorm` (`1.weight_orig`, `1.weight_u`, ...).
    /// Conditioned by `concat`, the one-hot class joins the flattened image; by `projection` or
    /// `ac`, the last layer becomes the `psi` of a `ClassHead`.
    public static func discriminator(hidden: [Int] = [512, 256], channels: Int = 1, size: Int = 28, slope: Float = 0.2,
                                     spectralNorm: Bool = false, conditioning: ClassConditioning? = nil,
                                     rng: inout PhiloxRandom) throws -> Sequential {
        func dense(_ i: Int, _ o: Int) throws -> any Layer {
            let l = try Linear(i, o, rng: &rng)
            return spectralNorm ? SpectralNorm(l, rng: &rng) : l
        }
        var layers: [any Layer] = [Reshape([channels * size * size])]
        var width = try DCGAN.conditionedInput([channels * size * size], conditioning, norm: .none, generator: false)[0]
        if let c = conditioning, let input = try DCGAN.inputLayer(c, generator: false, rng: &rng) { layers.append(input) }
        for h in hidden {
            layers.append(try dense(width, h))
            layers.append(Activation(.leakyRelu(slope)))
            width = h
        }
        let last = try dense(width, 1)
        if let head = try DCGAN.head(conditioning, psi: last, features: width, rng: &rng) {
            layers.append(head)
        } else {
            layers += [last, Reshape([])]
        }
        return Sequential(layers)
    }
}

extension DCGAN {
    /// Published DCGAN architectures, by the name a pipeline gives as `preset`.
    public enum Preset: String, Sendable, CaseIterable {
        /// The tutorial notebook's 28x28 DCGAN. G: transposed convolutions with kernel 3 and stride 2,
        /// latent -> 256 -> 128 -> 64 -> channels, sizes 1 -> 3 -> 7 -> 14 -> 28 (padding 0, 0, 1, 1 and
        /// output padding 0, 0, 1, 1 are what make 3 -> 7 -> 14 -> 28 with that kernel and stride), BN and
        /// ReLU between, tanh. D: convolutions k4 s2 p1, channels -> 64 -> 128 -> 256 -> 1, sizes
        /// 28 -> 14 -> 7 -> 3 -> 1, LeakyReLU(0.2), BN on the middle two.
        case notebook28
        /// pytorch/examples' DCGAN at 64x64, ngf = ndf = 64 (4x4 start, four k4 s2 p1 layers).
        case classic64

        public var resolution: Int { self == .notebook28 ? 28 : 64 }
        public var width: Int { 64 }

        public func generator(latent: Int, channels: Int, norm: Normalization = .batch, conditioning: ClassConditioning? = nil,
                              rng: inout PhiloxRandom) throws -> Sequential {
            switch self {
            case .notebook28:
                let specs = [ConvSpec(kernel: 3, stride: 2, padding: 0), ConvSpec(kernel: 3, stride: 2, padding: 0),
                             ConvSpec(kernel: 3, stride: 2, padding: 1, outputPadding: 1),
                             ConvSpec(kernel: 3, stride: 2, padding: 1, outputPadding: 1)]
                return try DCGAN.generator(features: [latent, 256, 128, 64, channels], specs: specs, norm: norm,
                                           conditioning: conditioning, rng: &rng)
            case .classic64:
                return try DCGAN.generator(latent: latent, channels: channels, resolution: 64, width: 64, norm: norm,
                                           conditioning: conditioning, rng: &rng)
            }
        }

        public func discriminator(channels: Int, norm: Normalization = .batch, conditioning: ClassConditioning? = nil,
                                  rng: inout PhiloxRandom) throws -> Sequential {
            switch self {
            case .notebook28:
                return try DCGAN.discriminator(features: [channels, 64, 128, 256, 1], specs: Array(repeating: .halving, count: 4),
                                               norm: norm, conditioning: conditioning, rng: &rng)
            case .classic64:
                return try DCGAN.discriminator(channels: channels, resolution: 64, width: 64, norm: norm,
                                               conditioning: conditioning, rng: &rng)
            }
        }
    }
}
