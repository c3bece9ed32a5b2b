#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The mutable side of a `NetlinkKernel`: its socket, the statistics file of its namespace and
/// the ownership ledger. Only ever touched under the kernel's lock, on the kernel's queue.
final class NetlinkSession {
    let socket: NetlinkSocket
    /// `xfrm_stat` opened inside the node's namespace, or -1.
    let statisticsDescriptor: Int32
    var ledger = OwnershipLedger()

    init(socket: NetlinkSocket, statisticsDescriptor: Int32) {
        self.socket = socket
        self.statisticsDescriptor = statisticsDescriptor
    }

    deinit {
        if statisticsDescriptor >= 0 { close(statisticsDescriptor) }
    }

    var exchange: NetlinkExchange { NetlinkExchange(transport: socket) }
}
