import ArgumentParser
import Controller
import Reconciler

/// `meshward rekey SPEC... [--channel FROM:TO | --node NAME | --all]`: rotate keys now.
struct RekeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rekey",
        abstract: "Rotate the keys of some channels now, make-before-break, then converge as apply does.",
        discussion: "Exactly one of --channel, --node or --all. Never asks for confirmation. Refuses as apply does "
            + "(another cluster; more than half of the channels removed without --force). Exit codes as for apply.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("Spec files or directories.", valueName: "spec"))
    var specs: [String]

    @Option(
        name: .long,
        help: ArgumentHelp(
            "The channels from one node to another (both families).",
            valueName: "from:to"))
    var channel: String?

    @Option(name: .long, help: ArgumentHelp("Every channel to or from this node.", valueName: "name"))
    var node: String?

    @Flag(name: .long, help: "Every channel of the spec.")
    var all = false

    @Flag(name: .long, help: "Do not wait for drains.")
    var noWait = false

    @Flag(
        name: .long,
        help: "Proceed although the spec removes more than half of the Store's channels (rekey applies the spec too).")
    var force = false

    @OptionGroup var leaseWait: LeaseWaitOptions

    func validate() throws {
        let chosen = [channel != nil, node != nil, all].filter { $0 }.count
        guard chosen == 1 else { throw ValidationError("Give exactly one of --channel FROM:TO, --node NAME or --all.") }
        if let channel, ChannelArgument(channel) == nil {
            throw ValidationError("--channel takes FROM:TO, two node names, for example web-1:app-1.")
        }
    }

    func run() async throws {
        let selection: RekeySelection
        if let channel = channel.flatMap(ChannelArgument.init) {
            selection = .channel(from: channel.from, to: channel.to)
        } else if let node {
            selection = .node(node)
        } else {
            selection = .all
        }
        try await ApplyRunner(
            global: global, specs: specs, waitForDrain: !noWait, rekey: selection, force: force,
            lockTimeout: leaseWait.lockTimeout
        ).run()
    }
}
