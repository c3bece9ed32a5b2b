import Kernel
import MeshwardCore
import Reconciler

extension KernelOperation {
    /// The SPI the operation names: the SA's own, or the one an outbound policy's template pins;
    /// nil for a policy without a pinned SPI.
    var spi: SPI? {
        switch self {
        case .addSA(let sa): sa.spi
        case .deleteSA(let id): id.spi
        case .addPolicy(let policy), .updatePolicy(let policy): policy.template.spi
        case .deletePolicy: nil
        }
    }
}
