// The fingerprint (core/fingerprint.h) of a PostgreSQL database, read from the catalog.
//
// Objects, one line each, keyed by schema-qualified names (each part as quote_ident()
// shows it: bare when a plain lower-case word, double-quoted otherwise), never by OID,
// so creation order and a dump/restore do not show:
//   "schema S"                       every schema except the system ones
//   "extension E"                    version and schema; what it creates is left out
//   "table S.T"                      columns sorted by name (format_type, collation when
//                                    not the type's, not null, default or generation
//                                    expression, identity), then partition key, parent
//                                    and bound, inheritance parents, unlogged, access
//                                    method, storage options, replica identity, row
//                                    security; one item per " | " as fingerprint.h wants
//   "columns S.T"                    column names in attnum order (dropped ones skipped)
//   "constraint S.T.C"               pg_get_constraintdef
//   "index S.I"                      pg_get_indexdef (valid indexes, as pg_dump dumps)
//   "view S.V", "matview S.V"        reloptions, pg_get_viewdef, WITH NO DATA
//   "function S.F(argtypes)"         pg_get_functiondef (procedures and window functions
//                                    too); aggregates by their pg_aggregate entry
//   "trigger S.T.G", "rule S.T.R", "policy S.T.P", "event trigger G"
//   "sequence S.Q"                   type, start, increment, bounds, cache, cycle,
//                                    owning column; not the current value (see below)
//   "type S.N"                       enum labels in order, composite attributes, range
//   "domain S.N"                     base type, collation, not null, default, checks
//   "statistics S.N", "collation S.N"
//   "comment on KIND IDENTITY"       pg_description, named by pg_identify_object
// SQL text in a line has its whitespace runs collapsed to one space outside quotes.
// Left out: everything belonging to an extension; functions made along with a type (a
// range's constructors); the keys, foreign keys and triggers partitions inherit from
// their parent, which follow from the parent's (and PostgreSQL names the copies on the
// referenced side of a foreign key to a partitioned table by creation order).
//
// Data: fingerprint.tables has one entry per ordinary table and partition (a partitioned
// parent holds no rows), keyed "S.T" with the raw names; a part holding '.' or '"' is
// double-quoted so two tables never share a key. Each row is hashed as its COPY text line:
// the non-generated columns in name order (so a column reordering shows only in the
// "columns" line), each printed by its type's output function under kPgRowTextSettings,
// escaped as COPY escapes (backslash, \b \f \n \r \t \v), NULL as \N, joined by tabs, in
// the database's encoding: exactly the line `COPY t (columns in name order) TO STDOUT`
// sends with client_encoding set to the server's. That line is hashed twice with the
// server's 64-bit hashtextextended() under two seeds (the hash family hash partitioning
// relies on, stable across upgrades), and each 64-bit lane is summed over the table
// exactly (numeric, no wrap-around). Sums do not depend on row order and count duplicate
// rows, and the aggregate state is a few numbers whatever the table's size. content_sha256
// is the SHA-256 of "safemig-pg-rows-3 COUNT SUM1 SUM2". Two different sets of rows collide
// by accident with negligible probability; an additive multiset hash is not collision
// resistant against someone crafting rows on purpose, which is not the threat here
// (comparing a database with its own backup or rehearsal).
//
// Why the COPY line: a backup streams exactly those lines, so it hashes them as they pass
// (pg_row_hash.h computes hashtextextended on this side) instead of having the server
// render every row a second time, and a restore hashes the lines it sends. For a live
// database (rehearsals, rollbacks, `fingerprint` of the target) the server computes the
// same value in SQL, so the fingerprint of a backup equals the fingerprint of the database
// it was taken from. HashOnServer says which tables the caller hashes itself. Below
// FingerprintDepth::kFull a table is counted with count(*), which renders no row, or not
// read at all; the catalog queries are the same at every depth.
//
// Sequence values are deliberately not part of the fingerprint: nextval() is not undone
// by a rollback, so a migration that failed and rolled back, or an up whose down deleted
// the rows it inserted, would otherwise differ from the database it left untouched. The
// backup carries sequence values in its own part (pg_dump.h).
//
// Output is made independent of the session: search_path, DateStyle, IntervalStyle,
// TimeZone, extra_float_digits, bytea_output, lc_monetary, client_encoding and friends
// are set for the duration of the call (SET LOCAL semantics) and put back afterwards.
// row_security is off, so a table whose policies would hide rows from this role fails
// loudly instead of hashing a subset.
//
// Limitations: ownership, privileges, security labels, tablespaces, column storage,
// compression and statistics targets, CLUSTER marks, foreign tables and servers,
// operators, casts, text search objects and publications are not described; user-defined
// base types are not either. Extension configuration tables (whose rows pg_dump dumps)
// are not hashed. Expressions are compared as the server deparses them, so equivalent
// but differently written expressions differ. Whitespace inside function bodies is
// collapsed like any other SQL text. pg_dump recreates a table that INHERITS from another
// with the inherited columns first, so a child whose parent gained columns after it was
// created restores with another column order; its "columns" line reports that (the
// restored table really differs). Partitions keep their order through pg_dump.
#include "drivers/postgres/pg_fingerprint.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <map>
#include <pqxx/except>
#include <pqxx/field>
#include <pqxx/result>
#include <pqxx/row>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/url.h"
#include "core/error.h"
#include "core/sql_quote.h"
#include "core/sha256.h"
#include "drivers/postgres/pg_row_hash.h"

namespace safemig {
namespace {

// Session settings that change how the server prints names, expressions and values.
// search_path '' makes format_type, pg_get_expr and the pg_get_*def functions qualify
// every name outside pg_catalog, as pg_dump does.
struct Setting {
  const char* name;
  const char* value;
};
constexpr std::array<Setting, 11> kSettings = {{
    {"search_path", ""},
    {"client_encoding", "UTF8"},
    {"DateStyle", "ISO, YMD"},
    {"IntervalStyle", "postgres"},
    {"TimeZone", "UTC"},
    {"extra_float_digits", "3"},
    {"bytea_output", "hex"},
    {"lc_monetary", "C"},
    {"standard_conforming_strings", "on"},
    {"quote_all_identifiers", "off"},
    {"row_security", "off"},
}};

// The CTEs every catalog query starts with:
//   ns   the schemas described
//   meta safemig's own tables (when left out) with their indexes and owned sequences
//   rel  the tables, views, materialized views and sequences described; `shown` is the
//        qualified name as lines show it
std::string CommonCtes(bool include_metadata) {
  return fmt::format(R"sql(
WITH ns AS (
  SELECT n.oid, n.nspname FROM pg_namespace n
  WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'
    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_namespace'::regclass
                      AND d.objid = n.oid AND d.deptype = 'e')),
meta_tables AS (
  SELECT c.oid FROM pg_class c
  WHERE NOT {0} AND c.relkind IN ('r', 'p')
    AND c.relname IN ('safemig_migrations', 'safemig_journal')),
meta AS (
  SELECT oid FROM meta_tables
  UNION ALL SELECT i.indexrelid FROM pg_index i WHERE i.indrelid IN (SELECT oid FROM meta_tables)
  UNION ALL SELECT d.objid FROM pg_depend d
    WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
      AND d.deptype IN ('a', 'i') AND d.refobjid IN (SELECT oid FROM meta_tables)),
rel AS (
  SELECT c.*, n.nspname, quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS shown
  FROM pg_class c JOIN ns n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S')
    AND c.oid NOT IN (SELECT oid FROM meta)
    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                      AND d.objid = c.oid AND d.deptype = 'e'))
)sql",
                     include_metadata ? "true" : "false");
}

// "schema.name" as lines show it, for a name column and its schema's oid column.
std::string Qualified(std::string_view namespace_oid, std::string_view name) {
  return fmt::format(
      "(SELECT quote_ident(qn.nspname) FROM pg_namespace qn WHERE qn.oid = {}) || '.' || "
      "quote_ident({})",
      namespace_oid, name);
}

// The collation with oid `oid` as "schema.name".
std::string CollationName(std::string_view oid) {
  return fmt::format(
      "(SELECT quote_ident(cn.nspname) || '.' || quote_ident(co.collname) FROM pg_collation co "
      "JOIN pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = {})",
      oid);
}

// A condition true when the object (`catalog`, `oid`) does not belong to an extension.
std::string NotExtensionMember(std::string_view catalog, std::string_view oid) {
  return fmt::format(
      "NOT EXISTS (SELECT 1 FROM pg_depend member WHERE member.classid = '{}'::regclass "
      "AND member.objid = {} AND member.deptype = 'e')",
      catalog, oid);
}

// Object lines whose SQL returns (key, details). Details may be NULL (a line of just its
// key). Sorted reloptions and name lists use COLLATE "C" so the database's collation
// cannot reorder them.
std::vector<std::string> LineQueries() {
  std::vector<std::string> queries;
  queries.emplace_back("SELECT 'schema ' || quote_ident(nspname), NULL FROM ns");

  queries.emplace_back(
      "SELECT 'extension ' || quote_ident(x.extname), 'version ' || x.extversion || ' schema ' "
      "|| quote_ident(n.nspname) FROM pg_extension x JOIN pg_namespace n ON n.oid = "
      "x.extnamespace");

  queries.emplace_back(
      "SELECT 'constraint ' || c.shown || '.' || quote_ident(k.conname), "
      "pg_get_constraintdef(k.oid) FROM pg_constraint k JOIN rel c ON c.oid = k.conrelid "
      "WHERE k.conparentid = 0 AND k.contype <> 't'");

  // pg_dump leaves out invalid indexes (a failed CREATE INDEX CONCURRENTLY) except on
  // partitioned tables, where invalid means "not every partition has one yet".
  queries.push_back(
      "SELECT 'index ' || " + Qualified("ic.relnamespace", "ic.relname") +
      ", pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN rel c ON c.oid = i.indrelid "
      "JOIN pg_class ic ON ic.oid = i.indexrelid WHERE i.indisvalid OR ic.relkind = 'I'");

  queries.emplace_back(
      "SELECT CASE c.relkind WHEN 'v' THEN 'view ' ELSE 'matview ' END || c.shown, "
      "concat_ws(' ', 'options (' || (SELECT string_agg(o, ', ' ORDER BY o COLLATE \"C\") "
      "FROM unnest(c.reloptions) o) || ')', pg_get_viewdef(c.oid), "
      "CASE WHEN c.relkind = 'm' AND NOT c.relispopulated THEN 'WITH NO DATA' END) "
      "FROM rel c WHERE c.relkind IN ('v', 'm')");

  // pg_get_functiondef refuses aggregates, so they are described by their parts.
  const std::string aggregate = R"sql(
(SELECT concat_ws(' ', 'AGGREGATE (' || pg_get_function_arguments(p.oid) || ')',
   'kind ' || a.aggkind::text, 'sfunc ' || a.aggtransfn::regprocedure,
   'stype ' || format_type(a.aggtranstype, NULL),
   CASE WHEN a.aggtransspace <> 0 THEN 'sspace ' || a.aggtransspace END,
   CASE WHEN a.aggfinalfn <> 0 THEN 'finalfunc ' || a.aggfinalfn::regprocedure END,
   CASE WHEN a.aggfinalextra THEN 'finalfunc_extra' END,
   'finalfunc_modify ' || a.aggfinalmodify::text,
   CASE WHEN a.aggcombinefn <> 0 THEN 'combinefunc ' || a.aggcombinefn::regprocedure END,
   CASE WHEN a.aggserialfn <> 0 THEN 'serialfunc ' || a.aggserialfn::regprocedure END,
   CASE WHEN a.aggdeserialfn <> 0 THEN 'deserialfunc ' || a.aggdeserialfn::regprocedure END,
   CASE WHEN a.aggmtransfn <> 0 THEN 'msfunc ' || a.aggmtransfn::regprocedure
     || ' minvfunc ' || a.aggminvtransfn::regprocedure
     || ' mstype ' || format_type(a.aggmtranstype, NULL) END,
   CASE WHEN a.aggmfinalfn <> 0 THEN 'mfinalfunc ' || a.aggmfinalfn::regprocedure END,
   CASE WHEN a.aggmfinalextra THEN 'mfinalfunc_extra' END,
   CASE WHEN a.aggsortop <> 0 THEN 'sortop ' || a.aggsortop::regoperator END,
   'initcond ' || quote_literal(a.agginitval), 'minitcond ' || quote_literal(a.aggminitval),
   'parallel ' || p.proparallel::text, CASE WHEN p.proisstrict THEN 'strict' END)
 FROM pg_aggregate a WHERE a.aggfnoid = p.oid))sql";
  queries.push_back("SELECT 'function ' || " + Qualified("p.pronamespace", "p.proname") +
                    " || '(' || oidvectortypes(p.proargtypes) || ')', "
                    "CASE WHEN p.prokind = 'a' THEN " +
                    aggregate +
                    " ELSE pg_get_functiondef(p.oid) END "
                    "FROM pg_proc p JOIN ns n ON n.oid = p.pronamespace WHERE " +
                    NotExtensionMember("pg_proc", "p.oid") +
                    // A range type's constructors come with the type (an internal
                    // dependency) and are described by it.
                    " AND NOT EXISTS (SELECT 1 FROM pg_depend i WHERE i.classid = "
                    "'pg_proc'::regclass AND i.objid = p.oid AND i.deptype = 'i')");

  queries.emplace_back(
      "SELECT 'trigger ' || c.shown || '.' || quote_ident(t.tgname), "
      "pg_get_triggerdef(t.oid) || CASE t.tgenabled WHEN 'D' THEN ' [disabled]' "
      "WHEN 'R' THEN ' [enabled replica]' WHEN 'A' THEN ' [enabled always]' ELSE '' END "
      "FROM pg_trigger t JOIN rel c ON c.oid = t.tgrelid "
      "WHERE NOT t.tgisinternal AND t.tgparentid = 0");

  queries.emplace_back(
      "SELECT 'rule ' || c.shown || '.' || quote_ident(r.rulename), "
      "pg_get_ruledef(r.oid) || CASE r.ev_enabled WHEN 'D' THEN ' [disabled]' "
      "WHEN 'R' THEN ' [enabled replica]' WHEN 'A' THEN ' [enabled always]' ELSE '' END "
      "FROM pg_rewrite r JOIN rel c ON c.oid = r.ev_class WHERE r.rulename <> '_RETURN'");

  queries.emplace_back(
      "SELECT 'policy ' || c.shown || '.' || quote_ident(p.polname), concat_ws(' ', "
      "CASE WHEN p.polpermissive THEN 'permissive' ELSE 'restrictive' END, "
      "'for ' || CASE p.polcmd WHEN 'r' THEN 'select' WHEN 'a' THEN 'insert' "
      "WHEN 'w' THEN 'update' WHEN 'd' THEN 'delete' ELSE 'all' END, "
      "'to ' || (SELECT string_agg(r.name, ', ' ORDER BY r.name COLLATE \"C\") FROM "
      "(SELECT CASE WHEN o = 0 THEN 'public' ELSE quote_ident(pg_get_userbyid(o)) END AS name "
      "FROM unnest(p.polroles) o) r), "
      "'using (' || pg_get_expr(p.polqual, p.polrelid) || ')', "
      "'with check (' || pg_get_expr(p.polwithcheck, p.polrelid) || ')') "
      "FROM pg_policy p JOIN rel c ON c.oid = p.polrelid");

  queries.push_back(
      "SELECT 'event trigger ' || quote_ident(e.evtname), concat_ws(' ', 'on ' || e.evtevent, "
      "'tags (' || (SELECT string_agg(quote_literal(g), ', ' ORDER BY g COLLATE \"C\") "
      "FROM unnest(e.evttags) g) || ')', 'execute ' || e.evtfoid::regprocedure, "
      "CASE e.evtenabled WHEN 'D' THEN '[disabled]' WHEN 'R' THEN '[enabled replica]' "
      "WHEN 'A' THEN '[enabled always]' END) FROM pg_event_trigger e WHERE " +
      NotExtensionMember("pg_event_trigger", "e.oid"));

  // The identity or serial column a sequence belongs to is part of the schema; its
  // current value is not (see the top of the file).
  queries.push_back(
      "SELECT 'sequence ' || c.shown, concat_ws(' ', 'as ' || format_type(s.seqtypid, NULL), "
      "'start ' || s.seqstart, 'increment ' || s.seqincrement, 'min ' || s.seqmin, "
      "'max ' || s.seqmax, 'cache ' || s.seqcache, "
      "CASE WHEN s.seqcycle THEN 'cycle' ELSE 'no cycle' END, "
      "CASE WHEN c.relpersistence = 'u' THEN 'unlogged' END, "
      "(SELECT CASE d.deptype WHEN 'i' THEN 'identity of ' ELSE 'owned by ' END || " +
      Qualified("t.relnamespace", "t.relname") +
      " || '.' || quote_ident(a.attname) FROM pg_depend d "
      "JOIN pg_class t ON t.oid = d.refobjid "
      "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid "
      "WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid "
      "AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') "
      "AND d.refobjsubid > 0 LIMIT 1)) "
      "FROM pg_sequence s JOIN rel c ON c.oid = s.seqrelid");

  // Enums, standalone composite types, ranges and domains. Composite attributes keep
  // their order: it is part of the type (row literals are positional).
  queries.push_back(
      "SELECT CASE t.typtype WHEN 'd' THEN 'domain ' ELSE 'type ' END || " +
      Qualified("t.typnamespace", "t.typname") +
      ", CASE t.typtype "
      "WHEN 'e' THEN 'enum (' || coalesce((SELECT string_agg(quote_literal(e.enumlabel), ', ' "
      "ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid), '') || ')' "
      "WHEN 'c' THEN 'composite (' || coalesce((SELECT string_agg(quote_ident(a.attname) || ' ' "
      "|| format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attcollation <> at.typcollation "
      "THEN ' collate ' || " +
      CollationName("a.attcollation") +
      " ELSE '' END, ', ' ORDER BY a.attnum) FROM pg_attribute a "
      "JOIN pg_type at ON at.oid = a.atttypid WHERE a.attrelid = t.typrelid AND a.attnum > 0 "
      "AND NOT a.attisdropped), '') || ')' "
      "WHEN 'r' THEN (SELECT concat_ws(' ', 'range of ' || format_type(r.rngsubtype, NULL), "
      "'collate ' || " +
      CollationName("nullif(r.rngcollation, 0)") +
      ", 'opclass ' || quote_ident(ocn.nspname) || '.' || quote_ident(oc.opcname), "
      "CASE WHEN r.rngcanonical <> 0 THEN 'canonical ' || r.rngcanonical::regprocedure END, "
      "CASE WHEN r.rngsubdiff <> 0 THEN 'subdiff ' || r.rngsubdiff::regprocedure END, "
      "'multirange ' || format_type(r.rngmultitypid, NULL)) FROM pg_range r "
      "JOIN pg_opclass oc ON oc.oid = r.rngsubopc "
      "JOIN pg_namespace ocn ON ocn.oid = oc.opcnamespace WHERE r.rngtypid = t.oid) "
      "ELSE concat_ws(' ', 'over ' || format_type(t.typbasetype, t.typtypmod), "
      "CASE WHEN t.typcollation <> (SELECT bt.typcollation FROM pg_type bt "
      "WHERE bt.oid = t.typbasetype) THEN 'collate ' || " +
      CollationName("t.typcollation") +
      " END, CASE WHEN t.typnotnull THEN 'not null' END, "
      "'default ' || pg_get_expr(t.typdefaultbin, 0)) || coalesce((SELECT string_agg("
      "' | constraint ' || quote_ident(k.conname) || ' ' || pg_get_constraintdef(k.oid), '' "
      "ORDER BY k.conname COLLATE \"C\") FROM pg_constraint k WHERE k.contypid = t.oid), '') "
      "END FROM pg_type t JOIN ns n ON n.oid = t.typnamespace "
      "WHERE (t.typtype IN ('e', 'd', 'r') OR (t.typtype = 'c' AND EXISTS (SELECT 1 FROM "
      "pg_class tc WHERE tc.oid = t.typrelid AND tc.relkind = 'c'))) AND " +
      NotExtensionMember("pg_type", "t.oid"));

  queries.push_back("SELECT 'statistics ' || " + Qualified("s.stxnamespace", "s.stxname") +
                    ", pg_get_statisticsobjdef(s.oid) FROM pg_statistic_ext s "
                    "JOIN rel c ON c.oid = s.stxrelid");

  // Every property but identity, owner and the library version the collation was
  // created with, whatever columns this server version's pg_collation has.
  queries.push_back("SELECT 'collation ' || " + Qualified("co.collnamespace", "co.collname") +
                    ", (to_jsonb(co) - 'oid' - 'collname' - 'collnamespace' - 'collowner' - "
                    "'collversion')::text FROM pg_collation co JOIN ns n ON n.oid = "
                    "co.collnamespace WHERE " +
                    NotExtensionMember("pg_collation", "co.oid"));

  // Objects made at initdb have OIDs below 16384 (FirstNormalObjectId); their comments
  // are the server's, except the public schema's, which users may change. Comments on
  // safemig's own tables (and their columns, constraints, indexes, triggers) follow the
  // tables.
  queries.emplace_back(R"sql(
SELECT 'comment on ' || o.type || ' ' || o.identity, quote_literal(d.description)
FROM pg_description d, LATERAL pg_identify_object(d.classoid, d.objoid, d.objsubid) o
WHERE (d.objoid >= 16384 OR (d.classoid = 'pg_namespace'::regclass
                             AND d.objoid IN (SELECT oid FROM ns)))
  AND (o.schema IS NULL OR o.schema IN (SELECT nspname FROM ns))
  AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = d.classoid
                    AND e.objid = d.objoid AND e.deptype = 'e')
  AND NOT (d.classoid = 'pg_class'::regclass AND d.objoid IN (SELECT oid FROM meta))
  AND NOT (d.classoid = 'pg_constraint'::regclass AND d.objoid IN
           (SELECT k.oid FROM pg_constraint k WHERE k.conrelid IN (SELECT oid FROM meta)))
  AND NOT (d.classoid = 'pg_trigger'::regclass AND d.objoid IN
           (SELECT g.oid FROM pg_trigger g WHERE g.tgrelid IN (SELECT oid FROM meta))))sql");
  return queries;
}

// The text of a field, empty for NULL.
std::string Text(const pqxx::field& field) {
  return field.is_null() ? std::string() : std::string(field.c_str(), field.size());
}

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// Collapses whitespace outside '...' and "..." to one space and trims the ends: the server
// pretty-prints view and function definitions over several lines, and a function created
// from a file with CRLF line ends is the same function as one created with LF.
std::string CollapseWhitespace(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  char quote = 0;
  bool pending_space = false;
  for (char c : text) {
    if (quote == 0 && IsSpace(c)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) {
      out.push_back(' ');
      pending_space = false;
    }
    out.push_back(c);
    if (quote != 0) {
      // A doubled quote closes and reopens, which leaves the state right.
      if (c == quote) quote = 0;
    } else if (c == '\'' || c == '"') {
      quote = c;
    }
  }
  return out;
}

void AddLine(Fingerprint& fingerprint, const std::string& key, const std::string& details) {
  fingerprint.objects[key] = details.empty() ? key : key + ": " + details;
}

// A table's key in fingerprint.tables: raw names joined by '.', a part quoted only when it
// holds '.' or '"', so "a.b"."c" and "a"."b.c" stay apart.
std::string DataKeyPart(const std::string& name) {
  return name.find_first_of(".\"") == std::string::npos ? name : QuoteIdentifier(name);
}

// How SQL prints a column exactly as COPY text does (see RenderedColumn).
enum class Rendering {
  kPlain,           // ::text is the output function, and it never needs escaping
  kBool,            // bool::text says 'true' where the output function says 't'
  kEscaped,         // ::text is the output function (I/O or binary coercion)
  kOutputFunction,  // a cast function to text exists (bpchar trims, inet adds /32), or a
                    // domain: concat() calls the output function itself
};

struct Column {
  std::string name;   // raw, for sorting
  std::string shown;  // quote_ident, for lines and SQL
  std::string item;   // "column NAME TYPE ..."
  bool generated = false;
  Rendering rendering = Rendering::kOutputFunction;
};

// Built-in types whose output is ASCII without backslashes or control characters and
// equal to their ::text: int2, int4, int8, oid, float4, float8, numeric, date, time,
// timetz, timestamp, timestamptz, interval, uuid.
bool IsPlainType(std::int64_t oid) {
  static constexpr std::array<std::int64_t, 14> kPlainTypes = {
      20, 21, 23, 26, 700, 701, 1700, 1082, 1083, 1266, 1114, 1184, 1186, 2950};
  return std::find(kPlainTypes.begin(), kPlainTypes.end(), oid) != kPlainTypes.end();
}

Rendering RenderingOf(std::int64_t type_oid, bool is_domain, bool has_text_cast_function) {
  if (is_domain || has_text_cast_function) return Rendering::kOutputFunction;
  if (type_oid == 16) return Rendering::kBool;
  return IsPlainType(type_oid) ? Rendering::kPlain : Rendering::kEscaped;
}

struct Table {
  std::string shown;     // schema.table, quote_ident'ed
  std::string data_key;  // see DataKeyPart
  bool partitioned = false;
  std::vector<std::string> items;  // table-level items after the columns
  std::vector<Column> columns;     // attnum order
};

std::map<std::string, Table> ReadTables(pqxx::transaction_base& tx, const std::string& ctes) {
  std::map<std::string, Table> tables;  // by oid
  const std::string parent_name = Qualified("p.relnamespace", "p.relname");
  const pqxx::result rows = tx.exec(
      ctes +
      "SELECT c.oid, c.shown, c.nspname, c.relname, c.relkind, c.relpersistence, "
      "CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END, "
      "CASE WHEN c.relispartition THEN (SELECT " +
      parent_name +
      " || ' ' || pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
      "JOIN pg_class p ON p.oid = i.inhparent WHERE i.inhrelid = c.oid) END, "
      "CASE WHEN NOT c.relispartition THEN (SELECT string_agg(" +
      parent_name +
      ", ', ' ORDER BY i.inhseqno) FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent "
      "WHERE i.inhrelid = c.oid) END, "
      "(SELECT am.amname FROM pg_am am WHERE am.oid = c.relam AND am.amname <> 'heap'), "
      "(SELECT string_agg(o, ', ' ORDER BY o COLLATE \"C\") FROM unnest(c.reloptions) o), "
      "CASE c.relreplident WHEN 'n' THEN 'nothing' WHEN 'f' THEN 'full' "
      "WHEN 'i' THEN 'index ' || (SELECT quote_ident(ic.relname) FROM pg_index i "
      "JOIN pg_class ic ON ic.oid = i.indexrelid WHERE i.indrelid = c.oid AND i.indisreplident) "
      "END, "
      "CASE WHEN c.relrowsecurity OR c.relforcerowsecurity THEN concat_ws(' ', "
      "CASE WHEN c.relrowsecurity THEN 'enabled' ELSE 'disabled' END, "
      "CASE WHEN c.relforcerowsecurity THEN 'forced' END) END "
      "FROM rel c WHERE c.relkind IN ('r', 'p')");
  for (const pqxx::row& row : rows) {
    Table& table = tables[Text(row[0])];
    table.shown = Text(row[1]);
    table.data_key = DataKeyPart(Text(row[2])) + "." + DataKeyPart(Text(row[3]));
    table.partitioned = Text(row[4]) == "p";
    auto add = [&table](std::string_view label, const pqxx::field& field) {
      if (!field.is_null()) table.items.push_back(fmt::format("{} {}", label, Text(field)));
    };
    if (Text(row[5]) == "u") table.items.emplace_back("persistence unlogged");
    add("partition by", row[6]);
    add("partition of", row[7]);
    if (!row[8].is_null()) table.items.push_back(fmt::format("inherits ({})", Text(row[8])));
    add("access method", row[9]);
    if (!row[10].is_null()) {
      table.items.push_back(fmt::format("storage options ({})", Text(row[10])));
    }
    add("replica identity", row[11]);
    add("row security", row[12]);
  }

  const pqxx::result columns =
      tx.exec(ctes +
              "SELECT a.attrelid, a.attname, quote_ident(a.attname), "
              "concat_ws(' ', format_type(a.atttypid, a.atttypmod), "
              "CASE WHEN a.attcollation <> t.typcollation THEN 'collate ' || " +
              CollationName("a.attcollation") +
              " END, CASE WHEN a.attnotnull THEN 'not null' END, "
              "CASE WHEN a.attgenerated = 's' THEN 'generated always as (' || "
              "pg_get_expr(ad.adbin, ad.adrelid) || ') stored' "
              "ELSE 'default ' || pg_get_expr(ad.adbin, ad.adrelid) END, "
              "CASE a.attidentity WHEN 'a' THEN 'generated always as identity' "
              "WHEN 'd' THEN 'generated by default as identity' END), "
              "a.attgenerated <> '', a.atttypid::int8, t.typtype = 'd', "
              "EXISTS (SELECT 1 FROM pg_cast k WHERE k.castsource = a.atttypid "
              "AND k.casttarget = 'text'::regtype AND k.castmethod = 'f') "
              "FROM pg_attribute a JOIN rel c ON c.oid = a.attrelid AND c.relkind IN ('r', 'p') "
              "JOIN pg_type t ON t.oid = a.atttypid "
              "LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum "
              "WHERE a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attrelid, a.attnum");
  for (const pqxx::row& row : columns) {
    auto table = tables.find(Text(row[0]));
    if (table == tables.end()) continue;
    Column column;
    column.name = Text(row[1]);
    column.shown = Text(row[2]);
    column.item = fmt::format("column {} {}", column.shown, Text(row[3]));
    column.generated = row[4].as<bool>();
    column.rendering = RenderingOf(row[5].as<std::int64_t>(), row[6].as<bool>(), row[7].as<bool>());
    table->second.columns.push_back(std::move(column));
  }
  return tables;
}

std::vector<const Column*> ByName(const std::vector<Column>& columns) {
  std::vector<const Column*> sorted;
  sorted.reserve(columns.size());
  for (const Column& column : columns) sorted.push_back(&column);
  std::sort(sorted.begin(), sorted.end(),
            [](const Column* a, const Column* b) { return a->name < b->name; });
  return sorted;
}

void AddTableLines(const Table& table, Fingerprint& fingerprint) {
  std::vector<std::string> items;
  for (const Column* column : ByName(table.columns)) items.push_back(column->item);
  items.insert(items.end(), table.items.begin(), table.items.end());
  AddLine(fingerprint, "table " + table.shown, fmt::format("{}", fmt::join(items, " | ")));

  std::vector<std::string> declared;
  declared.reserve(table.columns.size());
  for (const Column& column : table.columns) declared.push_back(column.shown);
  AddLine(fingerprint, "columns " + table.shown, fmt::format("{}", fmt::join(declared, ", ")));
}

// COPY's escaping of one value's text (CopyAttributeOutText): a backslash and the six
// control characters with a letter of their own; other bytes pass as they are.
std::string CopyEscaped(const std::string& text) {
  return "replace(replace(replace(replace(replace(replace(replace(" + text +
         R"sql(, E'\\', E'\\\\'), E'\b', E'\\b'), E'\f', E'\\f'), E'\n', E'\\n'), )sql"
         R"sql(E'\r', E'\\r'), E'\t', E'\\t'), E'\x0b', E'\\v'))sql";
}

// SQL for one column's field in the COPY text line of row `r`.
std::string RenderedColumn(const Column& column) {
  const std::string value = "r." + column.shown;
  switch (column.rendering) {
    case Rendering::kPlain:
      return fmt::format(R"sql(coalesce({}::text, E'\\N'))sql", value);
    case Rendering::kBool:
      return fmt::format(R"sql(CASE WHEN {0} THEN 't' WHEN NOT {0} THEN 'f' ELSE E'\\N' END)sql",
                         value);
    case Rendering::kEscaped:
      return fmt::format(R"sql(coalesce({}, E'\\N'))sql", CopyEscaped(value + "::text"));
    case Rendering::kOutputFunction:
      // num_nulls() tests the value itself: a composite whose fields are all NULL IS NULL
      // in SQL's sense, yet COPY prints it as "(,)".
      return fmt::format(R"sql(CASE WHEN num_nulls({0}) = 1 THEN E'\\N' ELSE {1} END)sql", value,
                         CopyEscaped("concat(" + value + ")"));
  }
  return value;  // unreachable: every Rendering is handled above
}

// See the top of the file for what is hashed. Generated columns are left out: the schema
// determines them, and COPY cannot write them back.
TableData HashTable(pqxx::transaction_base& tx, const Table& table) {
  std::vector<std::string> fields;
  for (const Column* column : ByName(table.columns)) {
    if (!column->generated) fields.push_back(RenderedColumn(*column));
  }
  const std::string line = fields.empty() ? std::string("''::text")
                                          : fmt::format("{}", fmt::join(fields, " || E'\\t' || "));
  // OFFSET 0 keeps the planner from inlining the line into each sum, which would render
  // every row twice.
  const pqxx::row sums =
      tx.exec1(fmt::format("SELECT count(*), coalesce(sum(hashtextextended(t, {})), 0), "
                           "coalesce(sum(hashtextextended(t, {})), 0) "
                           "FROM (SELECT {} AS t FROM ONLY {} AS r OFFSET 0) AS rendered",
                           kPgRowHashSeed1, kPgRowHashSeed2, line, table.shown));
  return PgTableData(sums[0].as<std::int64_t>(), Text(sums[1]), Text(sums[2]));
}

// HashTextExtended() reads words as little-endian, as the server does on x86-64 and ARM64;
// a big-endian server would give backups fingerprints no live database matches.
void CheckServerRowHash(pqxx::transaction_base& tx) {
  static constexpr std::array<std::string_view, 3> kProbes = {
      "", "safemig", "a probe longer than twelve bytes, \\ with tabs\t\u00e9"};
  for (std::string_view probe : kProbes) {
    const pqxx::row row = tx.exec1(fmt::format("SELECT hashtextextended({}, {})::text",
                                               tx.quote(std::string(probe)), kPgRowHashSeed1));
    const std::string server = Text(row[0]);
    const std::string ours = std::to_string(
        static_cast<std::int64_t>(HashTextExtended(probe.data(), probe.size(), kPgRowHashSeed1)));
    if (server != ours) {
      throw Error(Category::kMigrationFailed,
                  fmt::format("the PostgreSQL server hashes text differently from safemig "
                              "(hashtextextended gives {}, safemig {}): a big-endian server?",
                              server, ours),
                  "back this database up with pg_dump; safemig's PostgreSQL backups need a "
                  "little-endian server");
    }
  }
}

// The exact row count of `table` with an empty content hash (FingerprintDepth::kRowCounts).
TableData CountTable(pqxx::transaction_base& tx, const Table& table) {
  TableData data;
  data.rows = tx.exec1("SELECT count(*) FROM ONLY " + table.shown)[0].as<std::int64_t>();
  return data;
}

Fingerprint Collect(pqxx::transaction_base& tx, bool include_metadata, FingerprintDepth depth,
                    const TableFilter& read_in_full, const HashOnServer& hash_on_server) {
  const std::string ctes = CommonCtes(include_metadata);
  Fingerprint fingerprint;
  for (const std::string& query : LineQueries()) {
    for (const pqxx::row& row : tx.exec(ctes + query)) {
      AddLine(fingerprint, Text(row[0]), CollapseWhitespace(Text(row[1])));
    }
  }
  const std::map<std::string, Table> tables = ReadTables(tx, ctes);
  bool checked = false;
  for (const auto& entry : tables) {
    const Table& table = entry.second;
    AddTableLines(table, fingerprint);
    // A partitioned table's rows live in its partitions, which are hashed themselves.
    if (table.partitioned) continue;
    if (!ReadsInFull(depth, read_in_full, table.data_key)) {
      if (depth == FingerprintDepth::kRowCounts) {
        fingerprint.tables[table.data_key] = CountTable(tx, table);
      }
      continue;
    }
    if (!hash_on_server || hash_on_server(table.data_key)) {
      fingerprint.tables[table.data_key] = HashTable(tx, table);
      continue;
    }
    if (!checked) CheckServerRowHash(tx);
    checked = true;
    fingerprint.tables[table.data_key] = TableData{};
  }
  return fingerprint;
}

// Sets kSettings for the rest of the transaction and returns the previous values.
std::vector<std::string> ApplySettings(pqxx::transaction_base& tx) {
  std::vector<std::string> reads;
  std::vector<std::string> writes;
  for (const Setting& setting : kSettings) {
    reads.push_back(fmt::format("current_setting({})", tx.quote(setting.name)));
    writes.push_back(
        fmt::format("set_config({}, {}, true)", tx.quote(setting.name), tx.quote(setting.value)));
  }
  const pqxx::row old_values = tx.exec1(fmt::format("SELECT {}", fmt::join(reads, ", ")));
  std::vector<std::string> saved;
  for (const pqxx::field& field : old_values) saved.push_back(Text(field));
  tx.exec(fmt::format("SELECT {}", fmt::join(writes, ", ")));
  return saved;
}

void RestoreSettings(pqxx::transaction_base& tx, const std::vector<std::string>& saved) {
  std::vector<std::string> writes;
  for (std::size_t i = 0; i < saved.size(); ++i) {
    writes.push_back(
        fmt::format("set_config({}, {}, true)", tx.quote(kSettings[i].name), tx.quote(saved[i])));
  }
  tx.exec(fmt::format("SELECT {}", fmt::join(writes, ", ")));
}

[[noreturn]] void Fail(const std::string& message) {
  throw Error(Category::kMigrationFailed,
              "cannot fingerprint the PostgreSQL database: " + RedactSecrets(message),
              "check that the role may read every table (row security policies, privileges) "
              "and that the connection is healthy");
}

}  // namespace

const char* const kPgRowTextSettings =
    "SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; SET TimeZone = 'UTC'; "
    "SET extra_float_digits = 3; SET bytea_output = 'hex'; SET lc_monetary = 'C'; "
    "SET standard_conforming_strings = on; SET quote_all_identifiers = off; "
    "SET search_path = ''; SET row_security = off";

std::string PgTableDataKey(const std::string& schema, const std::string& table) {
  return DataKeyPart(schema) + "." + DataKeyPart(table);
}

TableData PgTableData(std::int64_t rows, std::string_view sum1, std::string_view sum2) {
  TableData data;
  data.rows = rows;
  data.content_sha256 = Sha256Hex(fmt::format("safemig-pg-rows-3 {} {} {}", rows, sum1, sum2));
  return data;
}

Fingerprint FingerprintPostgres(pqxx::transaction_base& tx, bool include_metadata,
                                const HashOnServer& hash_on_server) {
  return FingerprintPostgres(tx, include_metadata, FingerprintDepth::kFull, TableFilter(),
                             hash_on_server);
}

Fingerprint FingerprintPostgres(pqxx::transaction_base& tx, bool include_metadata,
                                FingerprintDepth depth, const TableFilter& read_in_full,
                                const HashOnServer& hash_on_server) {
  try {
    const std::vector<std::string> saved = ApplySettings(tx);
    Fingerprint fingerprint = Collect(tx, include_metadata, depth, read_in_full, hash_on_server);
    // On failure there is nothing to put back: the error aborted the transaction.
    RestoreSettings(tx, saved);
    return fingerprint;
  } catch (const pqxx::sql_error& e) {
    std::string message = e.what();
    while (!message.empty() && IsSpace(message.back())) message.pop_back();
    Fail(e.sqlstate().empty() ? message : fmt::format("{} (SQLSTATE {})", message, e.sqlstate()));
  } catch (const pqxx::pqxx_exception& e) {
    Fail(e.base().what());
  }
}

}  // namespace safemig
