import Engine
@testable import Supernet

/// A small space with every kind of elasticity, for fast tests (8×8 images, 3 classes, no dropout).
let tinySpace = SearchSpace(
    name: "tiny", inputChannels: 1, imageSize: 8, classes: 3, stemChannels: 8,
    stages: [
        StageSpec(outputChannels: 8, firstStride: 1, activation: .relu, squeezeExcite: false),
        StageSpec(outputChannels: 16, firstStride: 2, activation: .hswish, squeezeExcite: true),
    ],
    depths: [1, 2], kernels: [3, 5, 7], expandRatios: [2, 3], resolutions: [6, 8],
    headChannels: 16, seReduction: 4, dropout: 0)

/// A supernet whose BatchNorm statistics, biases and kernel transforms are all away from their initial
/// values, so that slicing or transformation mistakes show up in outputs.
func perturbedSupernet(_ space: SearchSpace, seed: UInt64) -> ElasticSupernet {
    let network = ElasticSupernet(space: space, seed: seed)
    var random = SeededRandom(seed: seed &+ 101)
    for parameter in network.parameters where !parameter.decays {
        for i in 0..<parameter.count {
            parameter.value[i] += 0.2 * random.nextGaussian()
        }
    }
    // Running statistics of one training-mode pass (so activations stay normalized in inference mode),
    // then jittered so that every channel's statistics matter.
    network.setBatchNormMomentum(1)
    let pixels = space.imageSize * space.imageSize * space.inputChannels
    let images = gaussianBuffer(16 * pixels, seed: seed &+ 7)
    _ = network.forward(images.pointer, batch: 16, arch: space.largest, training: true, random: &random)
    network.setBatchNormMomentum(0.1)
    for tensor in network.state {
        for i in 0..<tensor.buffer.count {
            if tensor.name.hasSuffix("running_var") {
                tensor.buffer[i] *= 0.8 + 0.4 * random.nextUnitFloat()
            } else {
                tensor.buffer[i] += 0.1 * random.nextGaussian()
            }
        }
    }
    return network
}

/// `count` floats of N(0, 1) noise.
func gaussianBuffer(_ count: Int, seed: UInt64) -> FloatBuffer {
    var random = SeededRandom(seed: seed)
    let buffer = FloatBuffer(count: count)
    for i in 0..<count {
        buffer[i] = random.nextGaussian()
    }
    return buffer
}

/// Random u8 images, N × S × S × C.
func randomPixels(_ count: Int, space: SearchSpace, seed: UInt64) -> [UInt8] {
    var random = SeededRandom(seed: seed)
    return (0..<(count * space.imageSize * space.imageSize * space.inputChannels)).map { _ in
        UInt8(truncatingIfNeeded: random.next())
    }
}
