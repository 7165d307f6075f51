import Engine

extension Parameter {
    /// Reorders the rows of this parameter viewed as [rows × columns] (values and optimizer velocity):
    /// new row i = old row order[i].
    func permuteRows(_ order: [Int], columns: Int) {
        for buffer in [value, velocity] {
            let old = buffer.array()
            for (i, source) in order.enumerated() {
                for j in 0..<columns {
                    buffer[i * columns + j] = old[source * columns + j]
                }
            }
        }
    }

    /// Reorders the columns of this parameter viewed as [rows × columns]: new column j = old column order[j].
    func permuteColumns(_ order: [Int], rows: Int, columns: Int) {
        for buffer in [value, velocity] {
            let old = buffer.array()
            for r in 0..<rows {
                for (j, source) in order.enumerated() {
                    buffer[r * columns + j] = old[r * columns + source]
                }
            }
        }
    }
}

extension ElasticBatchNorm {
    func permute(_ order: [Int]) {
        gamma.permuteRows(order, columns: 1)
        beta.permuteRows(order, columns: 1)
        for buffer in [runningMean, runningVariance] {
            let old = buffer.array()
            for (i, source) in order.enumerated() {
                buffer[i] = old[source]
            }
        }
    }
}

/// Indices sorted by decreasing importance; ties keep their original order.
func importanceOrder(_ importance: [Float]) -> [Int] {
    importance.indices.sorted { importance[$0] > importance[$1] || (importance[$0] == importance[$1] && $0 < $1) }
}

extension ElasticSupernet {
    /// Sorts every block's mid channels (and squeeze-excite hidden units) by importance, the L1 norm of the
    /// weights that read them, so that a narrower width keeps the most important ones. The network computes
    /// the same function at full width before and after (up to float rounding order).
    public func sortChannelsByImportance() {
        for block in blocks {
            block.sortChannels()
        }
    }
}

extension ElasticBlock {
    func sortChannels() {
        let mid = expand.maxOutput
        let out = slot.outputChannels
        if let se = squeezeExcite {
            let hidden = se.maxHidden
            var hiddenImportance = [Float](repeating: 0, count: hidden)
            for c in 0..<mid {
                for j in 0..<hidden {
                    hiddenImportance[j] += abs(se.expandWeight.value[c * hidden + j])
                }
            }
            let hiddenOrder = importanceOrder(hiddenImportance)
            se.reduceWeight.permuteRows(hiddenOrder, columns: mid)
            se.reduceBias.permuteRows(hiddenOrder, columns: 1)
            se.expandWeight.permuteColumns(hiddenOrder, rows: mid, columns: hidden)
        }

        var importance = [Float](repeating: 0, count: mid)
        for o in 0..<out {
            for c in 0..<mid {
                importance[c] += abs(project.weight.value[o * mid + c])
            }
        }
        let order = importanceOrder(importance)
        expand.weight.permuteRows(order, columns: slot.inputChannels)
        expand.norm.permute(order)
        depthwise.weight.permuteRows(order, columns: depthwise.largest * depthwise.largest)
        depthwise.norm.permute(order)
        if let se = squeezeExcite {
            se.reduceWeight.permuteColumns(order, rows: se.maxHidden, columns: mid)
            se.expandWeight.permuteRows(order, columns: se.maxHidden)
            se.expandBias.permuteRows(order, columns: 1)
        }
        project.weight.permuteColumns(order, rows: out, columns: mid)
    }
}
