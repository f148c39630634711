#include "report/facts.h"

#include <fmt/format.h>

#include <chrono>

#include "cli/context.h"
#include "core/clock.h"

namespace safemig::report {
namespace {

using nlohmann::json;

// The member `key` of `object` when it is there and not null; nullptr otherwise.
const json* Member(const json& object, const char* key) {
  if (!object.is_object()) return nullptr;
  auto found = object.find(key);
  if (found == object.end() || found->is_null()) return nullptr;
  return &*found;
}

// Strings as written; numbers as their digits, because versions are sometimes written
// as numbers by hand-made documents and a reader still wants to see them.
std::string Text(const json& object, const char* key) {
  const json* value = Member(object, key);
  if (value == nullptr) return {};
  if (value->is_string()) return value->get<std::string>();
  if (value->is_number_integer()) return std::to_string(value->get<std::int64_t>());
  return {};
}

std::optional<std::int64_t> Integer(const json& object, const char* key) {
  const json* value = Member(object, key);
  if (value == nullptr || !value->is_number()) return std::nullopt;
  if (value->is_number_float()) return static_cast<std::int64_t>(value->get<double>());
  if (value->is_number_unsigned()) {
    auto unsigned_value = value->get<std::uint64_t>();
    if (unsigned_value > static_cast<std::uint64_t>(INT64_MAX)) return INT64_MAX;
    return static_cast<std::int64_t>(unsigned_value);
  }
  return value->get<std::int64_t>();
}

std::optional<bool> Bool(const json& object, const char* key) {
  const json* value = Member(object, key);
  if (value == nullptr || !value->is_boolean()) return std::nullopt;
  return value->get<bool>();
}

std::vector<std::string> Texts(const json& object, const char* key) {
  std::vector<std::string> texts;
  const json* value = Member(object, key);
  if (value == nullptr) return texts;
  if (value->is_string()) {
    texts.push_back(value->get<std::string>());
    return texts;
  }
  if (!value->is_array()) return texts;
  for (const json& item : *value) {
    if (item.is_string()) texts.push_back(item.get<std::string>());
  }
  return texts;
}

// The objects of the array `key`; anything else in it is skipped.
std::vector<const json*> Objects(const json& object, const char* key) {
  std::vector<const json*> objects;
  const json* value = Member(object, key);
  if (value == nullptr || !value->is_array()) return objects;
  for (const json& item : *value) {
    if (item.is_object()) objects.push_back(&item);
  }
  return objects;
}

RehearsedMigration ReadRehearsedMigration(const json& item) {
  RehearsedMigration migration;
  migration.version = Text(item, "version");
  migration.name = Text(item, "name");
  migration.outcome = Text(item, "outcome");
  migration.up_ms = Integer(item, "up_ms");
  migration.down_ms = Integer(item, "down_ms");
  migration.reapply_ms = Integer(item, "reapply_ms");
  migration.reversible = Bool(item, "reversible");
  migration.irreversible = Bool(item, "irreversible").value_or(false);
  migration.differences = Texts(item, "differences");
  migration.column_order = Texts(item, "column_order");
  migration.data_loss = Texts(item, "data_loss");
  migration.error = Text(item, "error");
  migration.rollback_path = Text(item, "rollback_path");
  return migration;
}

std::optional<Rehearsal> ReadRehearsal(const json& document) {
  const json* value = Member(document, "rehearsal");
  if (value == nullptr || !value->is_object()) return std::nullopt;
  Rehearsal rehearsal;
  rehearsal.status = Text(*value, "status");
  rehearsal.at = Text(*value, "at");
  rehearsal.journal_id = Integer(*value, "journal_id");
  rehearsal.where = Text(*value, "where");
  rehearsal.kept = Bool(*value, "kept").value_or(false);
  rehearsal.scratch = Text(*value, "scratch");
  rehearsal.restore_ms = Integer(*value, "restore_ms");
  rehearsal.took_ms = Integer(*value, "took_ms");
  for (const json* item : Objects(*value, "migrations")) {
    rehearsal.migrations.push_back(ReadRehearsedMigration(*item));
  }
  return rehearsal;
}

std::optional<Backup> ReadBackup(const json& document) {
  const json* value = Member(document, "backup");
  if (value == nullptr || !value->is_object()) return std::nullopt;
  Backup backup;
  backup.id = Text(*value, "id");
  backup.bytes = Integer(*value, "bytes");
  backup.raw_bytes = Integer(*value, "raw_bytes");
  backup.took_ms = Integer(*value, "took_ms");
  backup.reused = Bool(*value, "reused").value_or(false);
  return backup;
}

std::optional<Rollback> ReadRollback(const json& document) {
  const json* value = Member(document, "rollback");
  if (value == nullptr || !value->is_object()) return std::nullopt;
  Rollback rollback;
  rollback.by_down_ms = Integer(*value, "by_down_ms");
  rollback.by_restore_ms = Integer(*value, "by_restore_ms");
  rollback.backup_id = Text(*value, "backup_id");
  rollback.recommended = Text(*value, "recommended");
  return rollback;
}

std::optional<Failure> ReadFailure(const json& document) {
  const json* value = Member(document, "error");
  if (value == nullptr) return std::nullopt;
  Failure failure;
  if (value->is_string()) {
    failure.message = value->get<std::string>();
    return failure;
  }
  if (!value->is_object()) return std::nullopt;
  failure.category = Text(*value, "category");
  failure.exit_code = Integer(*value, "exit_code");
  failure.message = Text(*value, "message");
  failure.hint = Text(*value, "hint");
  return failure;
}

Verdict ReadVerdict(const json& document, const std::optional<bool>& ok,
                    const std::optional<Failure>& failure) {
  std::string verdict = Text(document, "verdict");
  if (verdict == "go") {
    // A go that the same document calls not ok (a deploy that failed after the gates) is
    // not something to ship on.
    return ok == false ? Verdict::kNoGo : Verdict::kGo;
  }
  if (verdict == "no-go" || verdict == "no_go" || verdict == "nogo") return Verdict::kNoGo;
  if (failure || ok == false) return Verdict::kNoGo;
  return Verdict::kNone;
}

std::string Join(const std::vector<std::string>& parts, const char* separator) {
  std::string joined;
  for (const std::string& part : parts) {
    if (!joined.empty()) joined += separator;
    joined += part;
  }
  return joined;
}

// Why the way back by down-migrations is closed, one clause per migration that closes
// it, so the meeting hears which migration to look at.
std::string DownBlockers(const Facts& facts) {
  std::vector<std::string> blockers;
  if (facts.rehearsal) {
    for (const RehearsedMigration& migration : facts.rehearsal->migrations) {
      std::string label = MigrationLabel(migration.version, migration.name);
      if (migration.irreversible || migration.outcome == "irreversible") {
        blockers.push_back(label + " is irreversible");
      } else if (migration.outcome == "down_failed") {
        blockers.push_back(label + "'s down failed");
      } else if (migration.outcome == "down_differs") {
        blockers.push_back(label + "'s down leaves the schema different");
      } else if (migration.reversible == false || migration.rollback_path == "restore") {
        blockers.push_back(label + " cannot go down");
      }
    }
  }
  if (blockers.empty()) {
    for (const PendingMigration& migration : facts.pending) {
      if (migration.irreversible) {
        blockers.push_back(MigrationLabel(migration.version, migration.name) + " is irreversible");
      }
    }
  }
  return Join(blockers, "; ");
}

bool RehearsalMissing(const Facts& facts) {
  return !facts.rehearsal || facts.rehearsal->status == "missing";
}

}  // namespace

Facts ReadFacts(const json& document) {
  Facts facts;
  facts.command = Text(document, "command");
  facts.ok = Bool(document, "ok");
  facts.failure = ReadFailure(document);
  facts.verdict = ReadVerdict(document, facts.ok, facts.failure);
  facts.reasons = Texts(document, "reasons");
  facts.environment = Text(document, "environment");
  facts.database = Text(document, "database");
  facts.from_version = Text(document, "from_version");
  facts.to_version = Text(document, "to_version");
  facts.plan_hash = Text(document, "plan_hash");
  for (const json* item : Objects(document, "pending")) {
    facts.pending.push_back({Text(*item, "version"), Text(*item, "name"), Text(*item, "file"),
                             Bool(*item, "irreversible").value_or(false),
                             Bool(*item, "no_transaction").value_or(false)});
  }
  for (const json* item : Objects(document, "lint")) {
    facts.lint.push_back({Text(*item, "version"), Text(*item, "rule"), Text(*item, "severity"),
                          Text(*item, "message")});
  }
  for (const json* item : Objects(document, "gates")) {
    facts.gates.push_back({Text(*item, "name"), Text(*item, "status"), Text(*item, "detail")});
  }
  facts.backup = ReadBackup(document);
  facts.backup_estimate_bytes = Integer(document, "backup_estimate_bytes");
  facts.rehearsal = ReadRehearsal(document);
  facts.rollback = ReadRollback(document);
  for (const json* item : Objects(document, "migrations")) {
    facts.applied.push_back(
        {Text(*item, "version"), Text(*item, "name"), Integer(*item, "took_ms")});
  }
  facts.run_id = Text(document, "run_id");
  facts.took_ms = Integer(document, "took_ms");
  facts.verified = Bool(document, "verified");
  return facts;
}

std::string VerdictWord(const Facts& facts) {
  switch (facts.verdict) {
    case Verdict::kGo:
      return "GO";
    case Verdict::kNoGo:
      return "NO-GO";
    case Verdict::kNone:
      break;
  }
  return "NO VERDICT";
}

std::string VerdictSummary(const Facts& facts) {
  std::string command = facts.command.empty() ? "safemig" : "safemig " + facts.command;
  if (facts.failure && facts.verdict == Verdict::kNoGo && facts.reasons.empty()) {
    return fmt::format("{} failed before reaching a verdict, so nothing may go out.", command);
  }
  switch (facts.verdict) {
    case Verdict::kGo:
      return fmt::format("{} found nothing that stops this release.", command);
    case Verdict::kNoGo:
      if (facts.reasons.empty())
        return fmt::format("{} says this release must not go out.", command);
      return fmt::format("{} says this release must not go out, because:", command);
    case Verdict::kNone:
      break;
  }
  return fmt::format("{} did not give a go/no-go verdict.", command);
}

std::string MigrationLabel(const std::string& version, const std::string& name) {
  if (version.empty()) return name.empty() ? "(unnamed migration)" : name;
  if (name.empty()) return version;
  return version + "_" + name;
}

std::string DurationText(const std::optional<std::int64_t>& ms) {
  if (!ms) return "not run";
  return FormatDuration(std::chrono::milliseconds(*ms < 0 ? 0 : *ms));
}

std::string SizeText(const std::optional<std::int64_t>& bytes) {
  if (!bytes || *bytes < 0) return "unknown";
  return cli::Bytes(static_cast<std::uint64_t>(*bytes));
}

std::string OutcomeText(const std::string& outcome) {
  if (outcome == "ok") return "ok: down and up again give the same schema";
  if (outcome == "up_failed") return "up failed";
  if (outcome == "down_failed") return "down failed";
  if (outcome == "down_differs") return "down leaves the schema different";
  if (outcome == "reapply_differs") return "up again gives a different schema";
  if (outcome == "irreversible") return "irreversible: rollback must restore";
  if (outcome == "not_run") return "not run";
  if (outcome.empty()) return "unknown";
  return outcome;
}

bool OutcomeIsProblem(const std::string& outcome) {
  return outcome == "up_failed" || outcome == "down_failed" || outcome == "down_differs" ||
         outcome == "reapply_differs";
}

std::vector<std::string> PendingNotes(const PendingMigration& migration) {
  std::vector<std::string> notes;
  if (migration.irreversible) notes.push_back("irreversible: rollback must restore");
  if (migration.no_transaction) notes.push_back("runs outside a transaction");
  return notes;
}

std::string GateStatusText(const std::string& status) {
  if (status == "pass") return "PASS";
  if (status == "fail") return "FAIL";
  if (status == "skip") return "SKIP";
  if (status.empty()) return "unknown";
  return status;
}

// "on a scratch database on the same server" from the document's short form.
std::string WhereText(const std::string& where) {
  if (where.empty()) return {};
  if (where == "rehearsal_url") return " on the environment's rehearsal_url";
  if (where == "scratch database on the same server" || where == "temporary file") {
    return " on a " + where;
  }
  return " on " + where;
}

std::string RehearsalSentence(const Facts& facts) {
  if (RehearsalMissing(facts)) return "No rehearsal yet.";
  const Rehearsal& rehearsal = *facts.rehearsal;
  std::string when = rehearsal.at.empty() ? "" : " at " + rehearsal.at;
  std::string where = WhereText(rehearsal.where);
  std::string sentence;
  if (rehearsal.status == "passed") {
    sentence = fmt::format("Rehearsed{}{}: passed", when, where);
  } else if (rehearsal.status == "failed") {
    sentence = fmt::format("Rehearsed{}{}: FAILED", when, where);
  } else if (rehearsal.status == "stale") {
    sentence = fmt::format(
        "The last rehearsal{}{} is stale: it was not of this plan on this starting schema, so "
        "rehearse again",
        when, where);
  } else {
    std::string status = rehearsal.status.empty() ? "unknown" : rehearsal.status;
    sentence = fmt::format("Rehearsal{}{}: {}", when, where, status);
  }
  if (rehearsal.took_ms) sentence += fmt::format(" in {}", DurationText(rehearsal.took_ms));
  sentence += ".";
  if (rehearsal.restore_ms) {
    sentence += fmt::format(" Restoring the backup took {}.", DurationText(rehearsal.restore_ms));
  }
  if (rehearsal.kept && !rehearsal.scratch.empty()) {
    sentence += fmt::format(" The staging copy was kept: {}.", rehearsal.scratch);
  }
  return sentence;
}

std::string RollbackSentence(const Facts& facts) {
  if (!facts.rollback) {
    if (RehearsalMissing(facts)) return "How long a rollback takes is not known: no rehearsal yet.";
    return "How long a rollback takes is not known: this report carries no estimate.";
  }
  const Rollback& rollback = *facts.rollback;
  std::string blockers = rollback.by_down_ms ? "" : DownBlockers(facts);
  std::string down_closed = blockers.empty() ? "down-migrations are not available"
                                             : "down-migrations are not available: " + blockers;
  if (rollback.by_down_ms && rollback.by_restore_ms) {
    return fmt::format(
        "If something goes wrong, we can be back in about {} by down-migrations, or {} by "
        "restore.",
        DurationText(rollback.by_down_ms), DurationText(rollback.by_restore_ms));
  }
  if (rollback.by_down_ms) {
    return fmt::format(
        "If something goes wrong, we can be back in about {} by down-migrations; no restore "
        "time has been measured.",
        DurationText(rollback.by_down_ms));
  }
  if (rollback.by_restore_ms) {
    return fmt::format("If something goes wrong, we can be back in about {} by restore; {}.",
                       DurationText(rollback.by_restore_ms), down_closed);
  }
  return fmt::format(
      "If something goes wrong, no way back has been timed: {}, and no restore "
      "time has been measured.",
      down_closed);
}

std::string RecommendationSentence(const Facts& facts) {
  if (!facts.rollback) return {};
  const Rollback& rollback = *facts.rollback;
  std::string backup =
      rollback.backup_id.empty() ? "the pre-deploy backup" : "backup " + rollback.backup_id;
  if (rollback.recommended == "down") {
    return "Recommended way back: down-migrations, which keep the data written since the "
           "deploy.";
  }
  if (rollback.recommended == "restore") {
    return fmt::format(
        "Recommended way back: restore of {}, which loses the writes made since "
        "it was taken.",
        backup);
  }
  if (!rollback.backup_id.empty()) return fmt::format("Backup to restore: {}.", backup);
  return {};
}

std::string VerifiedSentence(const Facts& facts) {
  if (!facts.verified) return {};
  if (*facts.verified) {
    return "Verified: the database's schema now equals the rehearsal's up-state.";
  }
  return "NOT verified: the database's schema differs from the rehearsal's up-state.";
}

}  // namespace safemig::report
