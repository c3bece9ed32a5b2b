// DesiredState
