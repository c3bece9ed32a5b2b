// KernelSimulator
