/// SQLite plays every role of the Store. Its methods are synchronous (the database is a file on
/// this host; a call blocks only as long as its transaction), which satisfies the roles'
/// `async` requirements.
extension StateStore: ControllerStore {}
