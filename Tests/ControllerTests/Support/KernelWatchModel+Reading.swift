import Kernel

extension KernelWatchModel {
    /// What a kernel that this model follows would answer to an observation: the model's
    /// objects at its position (the in-memory test kernels of the watch's tests).
    var reading: NodeObservation {
        let objects = self.objects
        var reading = NodeObservation(
            securityAssociations: Array(objects.securityAssociations.values), policies: Array(objects.policies.values))
        reading.watchPosition = position
        return reading
    }
}
