// What the go/no-go report says, read once from the JSON document of `rehearse`, `plan`,
// `deploy` or `up` (docs/json-output.md), for both renderings (HTML and Markdown).
//
// Reading never throws: the document comes from another process or an older safemig, so
// a missing, null or mistyped field is read as absent and the renderings show what is
// there. The sentences returned here are plain text; each rendering escapes them.
// Everything here is a pure function of its arguments and therefore thread-safe.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace safemig::report {

enum class Verdict {
  kGo,
  kNoGo,  // also a failed command: nothing can go out on a failure
  kNone,  // the document carries no verdict (e.g. an `up` of an older safemig)
};

struct Gate {
  std::string name;
  std::string status;  // "pass" | "fail" | "skip" or whatever a newer safemig writes
  std::string detail;
};

struct LintFinding {
  std::string version;
  std::string rule;
  std::string severity;
  std::string message;
};

struct PendingMigration {
  std::string version;
  std::string name;
  std::string file;
  bool irreversible = false;
  bool no_transaction = false;
};

struct RehearsedMigration {
  std::string version;
  std::string name;
  std::string outcome;
  std::optional<std::int64_t> up_ms;
  std::optional<std::int64_t> down_ms;
  std::optional<std::int64_t> reapply_ms;
  std::optional<bool> reversible;
  bool irreversible = false;  // marked `-- safemig:irreversible`
  std::vector<std::string> differences;
  std::vector<std::string> column_order;
  std::vector<std::string> data_loss;
  std::string error;
  std::string rollback_path;
};

struct Rehearsal {
  std::string status;  // "passed" | "failed" | "missing" | "stale"
  std::string at;
  std::optional<std::int64_t> journal_id;
  std::string where;
  bool kept = false;
  std::string scratch;
  std::optional<std::int64_t> restore_ms;
  std::optional<std::int64_t> took_ms;
  std::vector<RehearsedMigration> migrations;
};

struct Backup {
  std::string id;
  std::optional<std::int64_t> bytes;
  std::optional<std::int64_t> raw_bytes;
  std::optional<std::int64_t> took_ms;
  bool reused = false;
};

struct Rollback {
  std::optional<std::int64_t> by_down_ms;  // absent when some step cannot go down
  std::optional<std::int64_t> by_restore_ms;
  std::string backup_id;
  std::string recommended;  // "down" | "restore"
};

struct AppliedMigration {
  std::string version;
  std::string name;
  std::optional<std::int64_t> took_ms;
};

// The error shape of a command that failed without reaching a verdict.
struct Failure {
  std::string category;
  std::optional<std::int64_t> exit_code;
  std::string message;
  std::string hint;
};

struct Facts {
  std::string command;
  std::optional<bool> ok;
  Verdict verdict = Verdict::kNone;
  std::vector<std::string> reasons;
  std::string environment;
  std::string database;
  std::string from_version;
  std::string to_version;
  std::string plan_hash;
  std::vector<PendingMigration> pending;
  std::vector<LintFinding> lint;
  std::vector<Gate> gates;
  std::optional<Backup> backup;
  std::optional<std::int64_t> backup_estimate_bytes;
  std::optional<Rehearsal> rehearsal;
  std::optional<Rollback> rollback;
  std::vector<AppliedMigration> applied;  // deploy/up: migrations applied by this run
  std::string run_id;
  std::optional<std::int64_t> took_ms;
  std::optional<bool> verified;
  std::optional<Failure> failure;
};

// Never throws, whatever `document` holds (a non-object reads as an empty report).
Facts ReadFacts(const nlohmann::json& document);

// "GO", "NO-GO" or "NO VERDICT": the headline, in words so it survives a grey printer.
std::string VerdictWord(const Facts& facts);

// One line under the headline: what was checked and what it means for the release.
std::string VerdictSummary(const Facts& facts);

// "20260301090000_add_url" (or whichever of the two is known).
std::string MigrationLabel(const std::string& version, const std::string& name);

// "812 ms", "2.4 s", "4 min 05 s" (core/clock.h); "not run" when absent.
std::string DurationText(const std::optional<std::int64_t>& ms);

// "1.2 MiB"; "unknown" when absent.
std::string SizeText(const std::optional<std::int64_t>& bytes);

// A rehearsal outcome in words: "down leaves the schema different" for "down_differs".
std::string OutcomeText(const std::string& outcome);

// Whether `outcome` means the migration cannot be trusted to go down and up again.
bool OutcomeIsProblem(const std::string& outcome);

// What a reader must know about a pending migration before it runs ("runs outside a
// transaction"); empty for an ordinary one.
std::vector<std::string> PendingNotes(const PendingMigration& migration);

// "pass" -> "PASS", with the unknown kept as written.
std::string GateStatusText(const std::string& status);

// Where the rehearsal stands: "Rehearsed at ... on a scratch database on the same server:
// passed in 2.4 s." or "No rehearsal yet."
std::string RehearsalSentence(const Facts& facts);

// "If something goes wrong, we can be back in about 20 ms by down-migrations, or 812 ms
// by restore." — or why one of the ways back is not available.
std::string RollbackSentence(const Facts& facts);

// Which way back the pipeline recommends and what it costs; empty when not stated.
std::string RecommendationSentence(const Facts& facts);

// Deploy/up: whether the final schema matched the rehearsal; empty when not stated.
std::string VerifiedSentence(const Facts& facts);

}  // namespace safemig::report
