import Foundation

/// The PostgreSQL schema, as append-only named migrations.
///
/// A migration, once released, is never edited: a change is a new migration appended at the end.
/// `schema_migrations` names every migration applied; a database naming one this list lacks was
/// written by a newer Meshward. Timestamps are `double precision` seconds since 2001-01-01 UTC
/// (Foundation's reference date), as in SQLite, which round-trip a `Date` exactly; the lease's are
/// computed from the server's `now()`. Addresses are their network-order bytes (4 or 16).
enum PostgresSchema {
    /// One named migration: its SQL runs in one transaction with its row in `schema_migrations`.
    struct Migration: Sendable {
        let name: String
        let sql: String

        /// The SQL as single statements (a prepared statement holds one): split after each `;`
        /// that ends a line outside a `$$`-quoted function body.
        var statements: [String] {
            var statements: [String] = []
            var current = ""
            var inBody = false
            for line in sql.split(separator: "\n", omittingEmptySubsequences: false) {
                current += line + "\n"
                if line.components(separatedBy: "$$").count.isMultiple(of: 2) { inBody.toggle() }
                if !inBody, line.trimmingCharacters(in: .whitespaces).hasSuffix(";") {
                    statements.append(current)
                    current = ""
                }
            }
            if !current.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { statements.append(current) }
            return statements
        }
    }

    /// Creates the table of applied migrations; run before anything else, idempotent.
    static let bookkeeping = """
        CREATE TABLE IF NOT EXISTS schema_migrations (
            name text PRIMARY KEY,
            applied_at timestamptz NOT NULL DEFAULT now()
        )
        """

    static let migrations: [Migration] = [
        Migration(
            name: "1-channels-and-generations",
            sql: """
                CREATE TABLE channels (
                    id bigserial PRIMARY KEY,
                    from_node text NOT NULL,
                    to_node text NOT NULL,
                    family text NOT NULL CHECK (family IN ('ipv4', 'ipv6')),
                    step text NOT NULL,
                    step_changed_at double precision NOT NULL,
                    -- The number of the newest generation ever issued; never decreases.
                    last_generation bigint NOT NULL DEFAULT 0,
                    UNIQUE (from_node, to_node, family)
                );
                CREATE TABLE generations (
                    channel_id bigint NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
                    number bigint NOT NULL CHECK (number >= 1),
                    spi bigint NOT NULL CHECK (spi BETWEEN 256 AND 4294967295),
                    cipher text NOT NULL,
                    source bytea NOT NULL,
                    destination bytea NOT NULL,
                    created_at double precision NOT NULL,
                    state text NOT NULL CHECK (state IN ('pending', 'active', 'retiring', 'retired')),
                    activated_at double precision,
                    superseded_at double precision,
                    retired_at double precision,
                    switch_sent_at double precision,
                    drain_packets bigint,
                    drain_packets_at double precision,
                    -- AES-256-GCM under the master key, which never enters the database; see
                    -- SealingContext for the associated data.
                    seal_version integer NOT NULL,
                    nonce bytea NOT NULL,
                    sealed_key bytea NOT NULL,
                    PRIMARY KEY (channel_id, number)
                );
                -- Keys and SPIs are fixed at issue: a generation's identity and key never change.
                CREATE FUNCTION generations_are_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    RAISE EXCEPTION 'a generation''s key, SPI and addresses are immutable';
                END $$;
                CREATE TRIGGER generations_are_immutable
                BEFORE UPDATE OF channel_id, number, spi, cipher, source, destination, created_at,
                    seal_version, nonce, sealed_key ON generations
                FOR EACH ROW EXECUTE FUNCTION generations_are_immutable();
                """),
        Migration(
            name: "2-issued-spis",
            sql: """
                -- Every SPI ever issued per destination address. Never deleted, so never reissued.
                CREATE TABLE issued_spis (
                    destination bytea NOT NULL,
                    spi bigint NOT NULL,
                    channel text NOT NULL,
                    issued_at double precision NOT NULL,
                    PRIMARY KEY (destination, spi)
                );
                CREATE FUNCTION issued_spis_are_permanent() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    RAISE EXCEPTION 'issued SPIs are never deleted or changed: they stay reserved forever';
                END $$;
                CREATE TRIGGER issued_spis_are_permanent BEFORE UPDATE OR DELETE ON issued_spis
                FOR EACH ROW EXECUTE FUNCTION issued_spis_are_permanent();
                CREATE TRIGGER issued_spis_are_never_truncated BEFORE TRUNCATE ON issued_spis
                FOR EACH STATEMENT EXECUTE FUNCTION issued_spis_are_permanent();
                """),
        Migration(
            name: "3-revisions-and-journal",
            sql: """
                CREATE TABLE revisions (
                    id bigserial PRIMARY KEY,
                    hash text NOT NULL,
                    source text NOT NULL,
                    summary text NOT NULL,
                    applied_at double precision NOT NULL,
                    command text
                );
                CREATE TABLE journal (
                    id bigserial PRIMARY KEY,
                    node text NOT NULL,
                    operation text NOT NULL,
                    target text NOT NULL,
                    channel_from text,
                    channel_to text,
                    channel_family text,
                    planned_at double precision NOT NULL,
                    applied_at double precision,
                    result text NOT NULL,
                    revision_id bigint REFERENCES revisions (id)
                );
                CREATE INDEX journal_by_node ON journal (node, id);
                CREATE INDEX journal_by_planned_at ON journal (planned_at);
                """),
        Migration(
            name: "4-lease-metadata-sealing",
            sql: """
                -- The one lease row, always present: holder NULL when released. Its times are
                -- the server's clock (now()); the epoch is one more every time the lease changes
                -- hands and never decreases.
                CREATE TABLE lease (
                    id integer PRIMARY KEY CHECK (id = 1),
                    holder text,
                    acquired_at double precision,
                    expires_at double precision,
                    epoch bigint NOT NULL DEFAULT 0,
                    CHECK ((holder IS NULL) = (expires_at IS NULL))
                );
                INSERT INTO lease (id, epoch) VALUES (1, 0);
                CREATE FUNCTION lease_epoch_never_decreases() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF TG_OP = 'DELETE' OR NEW.epoch < OLD.epoch THEN
                        RAISE EXCEPTION 'the lease epoch never decreases and its row is never deleted';
                    END IF;
                    RETURN NEW;
                END $$;
                CREATE TRIGGER lease_epoch_never_decreases BEFORE UPDATE OR DELETE ON lease
                FOR EACH ROW EXECUTE FUNCTION lease_epoch_never_decreases();
                -- The server's clock in the Store's time unit.
                CREATE FUNCTION meshward_now() RETURNS double precision LANGUAGE sql STABLE AS $$
                    SELECT extract(epoch FROM now())::double precision - 978307200
                $$;
                CREATE TABLE metadata (
                    key text PRIMARY KEY,
                    value text NOT NULL
                );
                -- A known value sealed under the master key when the store was created: a master
                -- key that does not open it is the wrong key.
                CREATE TABLE master_key_check (
                    id integer PRIMARY KEY CHECK (id = 1),
                    seal_version integer NOT NULL,
                    nonce bytea NOT NULL,
                    sealed_value bytea NOT NULL,
                    created_at double precision NOT NULL
                );
                CREATE TABLE unaccounted_sas (
                    destination bytea NOT NULL,
                    spi bigint NOT NULL,
                    freed_at double precision NOT NULL,
                    PRIMARY KEY (destination, spi)
                );
                """),
        Migration(
            name: "5-credentials",
            sql: """
                -- The cluster's TLS credentials (the CA, the controller's certificate): the
                -- certificate in the clear, the private key sealed under the master key with the
                -- credential's name as associated data. No key byte is stored in the clear.
                CREATE TABLE credentials (
                    name text PRIMARY KEY,
                    certificate_pem text NOT NULL,
                    seal_version integer NOT NULL,
                    nonce bytea NOT NULL,
                    sealed_key bytea NOT NULL,
                    created_at double precision NOT NULL
                );
                """),
        Migration(
            name: "6-revoked-certificates",
            sql: """
                -- Every node certificate the cluster CA issued (serial, node, validity), so that
                -- `agent revoke --node` finds them all, and the serials revoked. Never deleted.
                CREATE TABLE issued_certificates (
                    serial text PRIMARY KEY,
                    node text NOT NULL,
                    issued_at double precision NOT NULL,
                    not_valid_after double precision NOT NULL
                );
                CREATE INDEX issued_certificates_by_node ON issued_certificates (node);
                CREATE TABLE revoked_certificates (
                    serial text PRIMARY KEY,
                    node text NOT NULL,
                    revoked_at double precision NOT NULL,
                    reason text NOT NULL
                );
                """),
        Migration(
            name: "7-join-tokens",
            sql: """
                -- One-time join tokens: the node each enrolls, its expiry, and SHA-256 of its secret
                -- (the secret itself is never stored). A token is spent or revoked at most once.
                CREATE TABLE join_tokens (
                    id text PRIMARY KEY,
                    node text NOT NULL,
                    verifier bytea NOT NULL CHECK (length(verifier) = 32),
                    created_at double precision NOT NULL,
                    expires_at double precision NOT NULL,
                    spent_at double precision,
                    revoked_at double precision,
                    CHECK (spent_at IS NULL OR revoked_at IS NULL)
                );
                """),
        Migration(
            name: "8-two-digit-certificate-serials",
            sql: """
                -- Serials were recorded as swift-certificates prints them, each byte without its
                -- leading zero (c:ff:1), and are stored, printed and compared in CertificateSerial's
                -- form (0c:ff:01) from now on: each byte padded to two lowercase digits.
                UPDATE issued_certificates SET serial = (
                    SELECT string_agg(lower(lpad(part, 2, '0')), ':' ORDER BY n)
                    FROM unnest(string_to_array(serial, ':')) WITH ORDINALITY AS parts(part, n)
                )
                WHERE serial ~ '^[0-9a-fA-F]{1,2}(:[0-9a-fA-F]{1,2})*$';
                UPDATE revoked_certificates SET serial = (
                    SELECT string_agg(lower(lpad(part, 2, '0')), ':' ORDER BY n)
                    FROM unnest(string_to_array(serial, ':')) WITH ORDINALITY AS parts(part, n)
                )
                WHERE serial ~ '^[0-9a-fA-F]{1,2}(:[0-9a-fA-F]{1,2})*$';
                """),
    ]
}
