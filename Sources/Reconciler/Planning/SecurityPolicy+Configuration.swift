import Kernel

extension SecurityPolicy {
    /// True when the two policies would treat every packet alike: same selector, direction,
    /// priority, and template SPI, reqid and level.
    public func hasSameConfiguration(as other: SecurityPolicy) -> Bool {
        identifier == other.identifier && priority == other.priority && template.spi == other.template.spi
            && template.reqid == other.template.reqid && template.isOptional == other.template.isOptional
    }
}
