import COpenBLAS

/// Single-precision matrix multiply, row-major: C = alpha * op(A) * op(B) + beta * C (OpenBLAS).
///
/// OpenBLAS itself always runs single-threaded (see `Parallel.setThreadCount`): measured, its multi-threaded
/// sgemm gives results that change with the thread count (about a third of the outputs by an ulp or more), and
/// its idle threads spin and compete with the engine's. Instead the engine splits a product into blocks fixed by
/// the shape alone and runs one single-threaded `cblas_sgemm` per block on its own threads, so the result is
/// bitwise independent of the thread count.
public enum GEMM {
    /// Rows (or columns) per block when splitting C.
    static let outputBlock = 256

    /// Inner-dimension chunk when splitting the sum itself (weight gradients: small C, long sums). At 4096, the
    /// last stages' weight gradients at batch 128 (sums of 2,048 and 6,272 pixels) ran on one thread: 5% of a
    /// two-thread training step's samples were OpenBLAS on the calling thread alone.
    static let innerChunk = 1024

    /// Below this many multiply-adds a product is one call on the caller's thread.
    static let minimumParallelCost = 1 << 20

    /// Makes OpenBLAS single-threaded once per process, before the first product.
    static let singleThreadedOpenBLAS: Bool = {
        openblas_set_num_threads(1)
        return true
    }()

    /// op(A) is m × k, op(B) is k × n, C is m × n; lda/ldb/ldc are row strides of the stored matrices.
    ///
    /// Empty shapes (m or n = 0) do nothing; k = 0 scales C by beta. With beta = 0, C is not read. Blocking:
    /// m ≥ 512 splits C into 256-row blocks; otherwise k ≥ 2048 splits the sum into 1024-long chunks (each into
    /// scratch, then added in chunk order, which rounds once more per chunk); otherwise n ≥ 512 splits C into
    /// 256-column blocks. Thread-safe for distinct outputs.
    public static func multiply(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
        alpha: Float, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        guard m > 0, n > 0 else {
            return
        }

        _ = singleThreadedOpenBLAS
        @inline(__always)
        func call(
            _ m: Int, _ n: Int, _ k: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ beta: Float,
            _ c: UnsafeMutablePointer<Float>, _ ldc: Int
        ) {
            cblas_sgemm(
                CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(max(lda, 1)), b, Int32(max(ldb, 1)),
                beta, c, Int32(max(ldc, 1))
            )
        }

        let cost = m * n * k
        if cost < minimumParallelCost {
            call(m, n, k, a, b, beta, c, ldc)
        } else if m >= 2 * outputBlock {
            let blocks = (m + outputBlock - 1) / outputBlock
            Parallel.forRanges(blocks, cost: cost, minimumCost: minimumParallelCost) { range in
                for block in range {
                    let row = block * outputBlock
                    let rows = min(outputBlock, m - row)
                    call(rows, n, k, transposeA ? a + row : a + row * lda, b, beta, c + row * ldc, ldc)
                }
            }
        } else if k >= 2 * innerChunk {
            let chunks = (k + innerChunk - 1) / innerChunk
            ScratchPool.withFloats(chunks * m * n) { partials in
                Parallel.forRanges(chunks, cost: cost, minimumCost: minimumParallelCost) { range in
                    for chunk in range {
                        let start = chunk * innerChunk
                        let length = min(innerChunk, k - start)
                        call(
                            m, n, length, transposeA ? a + start * lda : a + start,
                            transposeB ? b + start : b + start * ldb, 0, partials + chunk * m * n, n
                        )
                    }
                }
                Parallel.forRanges(m, cost: chunks * m * n, minimumCost: Elementwise.minimumParallelCount) { range in
                    for row in range {
                        let target = c + row * ldc
                        for column in 0..<n {
                            var sum = beta == 0 ? 0 : beta * target[column]
                            for chunk in 0..<chunks {
                                sum += partials[(chunk * m + row) * n + column]
                            }
                            target[column] = sum
                        }
                    }
                }
            }
        } else if n >= 2 * outputBlock {
            let blocks = (n + outputBlock - 1) / outputBlock
            Parallel.forRanges(blocks, cost: cost, minimumCost: minimumParallelCost) { range in
                for block in range {
                    let column = block * outputBlock
                    let columns = min(outputBlock, n - column)
                    call(m, columns, k, a, transposeB ? b + column * ldb : b + column, beta, c + column, ldc)
                }
            }
        } else {
            call(m, n, k, a, b, beta, c, ldc)
        }
    }
}
