import Kernel
import MeshwardCore

@testable import Reconciler

/// Every SA that a run of passes sent and every generation it issued, to check that no SPI or
/// key is ever used twice: an SPI at a destination names one key and one generation, a key one
/// SPI at one destination, and an SA deleted from a node is never installed there again (a
/// generation whose SA was lost is replaced by a new one, never re-installed). The same SA on
/// its two nodes, or sent again after a batch whose answer was lost, is one use.
struct InstalledKeyLedger {
    /// The key fingerprint each SA was first sent with.
    private var keys: [SAIdentifier: String] = [:]
    /// The SA each key fingerprint was first sent as.
    private var identifiers: [String: SAIdentifier] = [:]
    /// The SAs each node had deleted by this run.
    private var deleted: [String: Set<SAIdentifier>] = [:]
    /// The generation each SPI at a destination, and each key, was issued for.
    private var generationsBySA: [SAIdentifier: String] = [:]
    private var generationsByKey: [String: String] = [:]
    /// Every reuse found, in the order found.
    private(set) var reuses: [String] = []

    /// How many distinct SAs were sent.
    var installed: Int { keys.count }

    /// Notes every SA that `report`'s pass sent and every one it deleted.
    mutating func note(_ report: PassReport) {
        for (planned, outcome) in report.results { note(planned.operation, on: planned.node, outcome: outcome) }
    }

    /// Notes one operation sent to `node` and how it ended: an SA added is a use whatever the
    /// answer (the planner chose its SPI and key); a deletion counts once applied.
    mutating func note(_ operation: KernelOperation, on node: String, outcome: OperationOutcome) {
        switch operation {
        case .addSA(let sa):
            let id = sa.identifier
            let fingerprint = sa.key.fingerprint
            let name = "spi \(id.spi.hex) at \(id.destination)"
            if let known = keys[id], known != fingerprint {
                reuses.append("\(node): \(name) sent with a second key")
            }
            if let known = identifiers[fingerprint], known != id {
                reuses.append("\(node): the key of spi \(known.spi.hex) at \(known.destination) sent again as \(name)")
            }
            if deleted[node]?.contains(id) == true {
                reuses.append("\(node): \(name) installed again after it was deleted there")
            }
            keys[id] = keys[id] ?? fingerprint
            identifiers[fingerprint] = identifiers[fingerprint] ?? id
        case .deleteSA(let id) where outcome.isApplied:
            deleted[node, default: []].insert(id)
        default:
            break
        }
    }

    /// Notes every generation `records` hold: each SPI at its destination and each key belongs
    /// to one generation ever, and an SA sent with a generation's SPI carries its key.
    mutating func note(_ records: [ChannelID: ChannelRecord]) {
        for record in records.values.sorted(by: { $0.id < $1.id }) {
            for generation in record.generations {
                let name = "\(record.id) generation \(generation.number)"
                let id = SAIdentifier(destination: generation.destination, spi: generation.spi)
                let fingerprint = generation.key.fingerprint
                if let other = generationsBySA[id], other != name {
                    reuses.append("spi \(id.spi.hex) at \(id.destination) issued to \(other) and to \(name)")
                }
                if let other = generationsByKey[fingerprint], other != name {
                    reuses.append("one key issued to \(other) and to \(name)")
                }
                if let sent = keys[id], sent != fingerprint {
                    reuses.append("spi \(id.spi.hex) at \(id.destination) was sent with a key that is not \(name)'s")
                }
                generationsBySA[id] = generationsBySA[id] ?? name
                generationsByKey[fingerprint] = generationsByKey[fingerprint] ?? name
            }
        }
    }
}
