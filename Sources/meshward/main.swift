import MeshwardCommands

await Meshward.runCommandLine()
