import Store

/// What a pass needs of the Store: channels and generations to read and record, and the journal
/// of what it sends. Any `ControllerStore` is one; `ScratchGenerationStore` is one in memory for
/// `plan`, `status` and the lost-Store check, which must not write.
public typealias PassStore = GenerationStore & JournalStore
