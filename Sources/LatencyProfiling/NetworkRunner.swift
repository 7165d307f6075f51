// A whole subnet run layer after layer with random weights: the pass whose time the table predicts.
import Engine
import LatencyTable

/// One subnet of a `ProfiledSpace` with random weights and every buffer allocated up front, run as the daemon's
/// static inference network runs it: resize from the image side when the resolution differs, stem, blocks (with
/// the residual addition of stride-1 blocks that keep their width), head, pool, classifier.
/// Not thread-safe: one pass at a time.
final class NetworkRunner {
    private struct Block {
        let expand: LayerKernel
        let depthwise: LayerKernel
        let excite: LayerKernel?
        let project: LayerKernel
        let residual: Bool
    }

    private let space: ProfiledSpace
    private let resolution: Int
    private let stem: LayerKernel
    private let blocks: [Block]
    private let head: LayerKernel
    private let pool: LayerKernel
    private let classifier: LayerKernel
    private let image: FloatBuffer
    private let resized: FloatBuffer
    private let ping: FloatBuffer
    private let pong: FloatBuffer
    private let expanded: FloatBuffer
    private let filtered: FloatBuffer
    private let pooled: FloatBuffer
    private let logits: FloatBuffer

    /// Builds the layers of `arch` with weights from `seed`.
    init(space: ProfiledSpace, arch: ProfiledArch, seed: UInt64) {
        var generator = SeededGenerator(seed: seed)
        let keys = space.layers(for: arch)
        var kernels = keys.map { LayerKernel($0, generator: &generator) }
        self.space = space
        resolution = arch.resolution
        stem = kernels.removeFirst()
        classifier = kernels.removeLast()
        pool = kernels.removeLast()
        head = kernels.removeLast()

        var blocks: [Block] = []
        var index = 0
        while index < kernels.count {
            let expand = kernels[index]
            let depthwise = kernels[index + 1]
            let excite = kernels[index + 2].key.op == .squeezeExcite ? kernels[index + 2] : nil
            let project = kernels[index + (excite == nil ? 2 : 3)]
            let residual =
                depthwise.key.stride == 1 && expand.key.inputChannels == project.key.outputChannels
            blocks.append(
                Block(expand: expand, depthwise: depthwise, excite: excite, project: project, residual: residual))
            index += excite == nil ? 3 : 4
        }
        self.blocks = blocks

        let all = [stem, head, pool, classifier] + blocks.flatMap { [$0.expand, $0.depthwise, $0.project] }
        let largest = all.map { max($0.inputCount, $0.outputCount) }.max() ?? 1
        image = LayerKernel.uniform(space.imageSize * space.imageSize * space.imageChannels, fanIn: 1, &generator)
        resized = FloatBuffer(count: stem.inputCount)
        ping = FloatBuffer(count: largest)
        pong = FloatBuffer(count: largest)
        expanded = FloatBuffer(count: largest)
        filtered = FloatBuffer(count: largest)
        pooled = FloatBuffer(count: space.headChannels)
        logits = FloatBuffer(count: space.classes)
    }

    /// One forward pass; returns the first logit (so the work cannot be optimized away).
    @discardableResult
    func run() -> Float {
        var input = image.pointer
        if resolution != space.imageSize {
            Elementwise.resizeBilinear(
                input: image.pointer, batch: 1, height: space.imageSize, width: space.imageSize,
                channels: space.imageChannels, outputHeight: resolution, outputWidth: resolution,
                output: resized.pointer)
            input = resized.pointer
        }
        var current = ping.pointer
        var next = pong.pointer
        stem.run(input, current)

        for block in blocks {
            block.expand.run(current, expanded.pointer)
            block.depthwise.run(expanded.pointer, filtered.pointer)
            block.excite?.run(filtered.pointer, filtered.pointer)
            block.project.run(filtered.pointer, next)
            if block.residual {
                Elementwise.add(next, current, output: next, count: block.project.outputCount)
            }
            swap(&current, &next)
        }
        head.run(current, expanded.pointer)
        pool.run(expanded.pointer, pooled.pointer)
        classifier.run(pooled.pointer, logits.pointer)
        return logits[0]
    }
}
