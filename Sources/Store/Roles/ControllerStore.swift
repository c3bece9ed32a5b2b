/// Everything a controller needs of the Store: every role, from one database.
///
/// `StateStore` (SQLite in the state directory) is the first conformer; a store on a database
/// server conforms the same way. Key sealing is not a role here but the conformer's own
/// `KeySealer`: the master key never enters the database.
public protocol ControllerStore: GenerationStore, SPIReservations, JournalStore, RevisionStore, MetadataStore,
    LeaseStore, CredentialStore, CertificateLedger, JoinTokenStore
{}
