// `init` and `new`: files on disk only, no database.
#include <cctype>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "cli/commands.h"
#include "core/clock.h"
#include "core/discovery.h"
#include "core/error.h"

namespace safemig::cli {
namespace {

namespace fs = std::filesystem;

void WriteNewFile(const fs::path& path, const std::string& text) {
  if (fs::exists(path)) {
    throw Error(Category::kUsage, fmt::format("{} already exists; nothing was written", path.string()),
                "choose another name, or remove the file first");
  }
  std::ofstream out(path, std::ios::binary);
  out << text;
  out.close();
  if (!out) {
    throw Error(Category::kConfig, fmt::format("could not write {}", path.string()),
                "check that the directory is writable");
  }
}

// Keeps URLs out of files that get committed: a password becomes ${SAFEMIG_DB_PASSWORD}.
std::string UrlForConfig(const std::string& url, bool& had_password) {
  DatabaseUrl parsed = ParseDatabaseUrl(url);
  had_password = parsed.password.has_value();
  if (!had_password) return url;
  std::string redacted = parsed.Redacted();
  size_t star = redacted.find("***");
  return redacted.substr(0, star) + "${SAFEMIG_DB_PASSWORD}" + redacted.substr(star + 3);
}

void RunInit(const GlobalOptions& options) {
  Console console(options);
  fs::path config = options.config_file.empty() ? "safemig.toml" : options.config_file;
  fs::path dir = options.dir.empty() ? "migrations" : options.dir;
  bool had_password = false;
  std::string url = UrlForConfig(options.url.empty() ? "sqlite:app.db" : options.url,
                                 had_password);
  if (fs::exists(config)) {
    throw Error(Category::kUsage, fmt::format("{} already exists; nothing was changed",
                                              config.string()),
                "edit it, or pass --config to write another file");
  }
  fs::create_directories(dir);
  fs::path base = config.has_parent_path() ? config.parent_path() : fs::path(".");
  std::string dir_in_config = fs::relative(fs::absolute(dir), fs::absolute(base)).string();
  WriteNewFile(config,
               fmt::format("# safemig configuration. Docs: docs/configuration.md\n"
                           "# ${{VAR}} is read from the environment; keep passwords out of "
                           "this file.\n"
                           "migrations = \"{}\"\n"
                           "default_environment = \"development\"\n\n"
                           "[environments.development]\n"
                           "url = \"{}\"\n"
                           "# backups = \".safemig/backups/development\"\n\n"
                           "# [environments.production]\n"
                           "# url = \"postgres://app:${{PROD_DB_PASSWORD}}@db.internal/app\"\n"
                           "# protected = true\n"
                           "# lock_timeout = \"10s\"\n",
                           dir_in_config, url));
  if (console.json()) {
    console.Json({{"command", "init"}, {"ok", true}, {"config", config.string()},
                  {"migrations_dir", dir.string()}});
    return;
  }
  console.Line(fmt::format("Created {} and {}/.", config.string(), dir.string()));
  if (had_password) {
    console.Line("The password from --url was not written: set SAFEMIG_DB_PASSWORD instead.");
  }
  console.Line("Next: safemig new create_first_table");
}

std::string Slug(const std::string& name) {
  std::string slug;
  for (char c : name) {
    unsigned char u = static_cast<unsigned char>(c);
    if (std::isalnum(u)) {
      slug.push_back(static_cast<char>(std::tolower(u)));
    } else if (!slug.empty() && slug.back() != '_') {
      slug.push_back('_');
    }
  }
  while (!slug.empty() && slug.back() == '_') slug.pop_back();
  return slug;
}

// Now as YYYYMMDDHHMMSS, moved on by seconds past any version already in `dir`, so two
// `new` runs in the same second do not collide.
std::string UnusedVersion(const fs::path& dir) {
  auto when = std::chrono::system_clock::now();
  for (;;) {
    std::string version = FormatVersionStamp(when);
    bool taken = false;
    for (const auto& entry : fs::directory_iterator(dir)) {
      std::string name = entry.path().filename().string();
      if (name.rfind(version + "_", 0) == 0 || name.rfind("V" + version + "__", 0) == 0 ||
          name.rfind("U" + version + "__", 0) == 0) {
        taken = true;
        break;
      }
    }
    if (!taken) return version;
    when += std::chrono::seconds(1);
  }
}

void RunNew(const GlobalOptions& options, const std::string& raw_name) {
  Console console(options);
  std::string name = Slug(raw_name);
  if (name.empty()) {
    throw Error(Category::kUsage, fmt::format("'{}' gives no usable migration name", raw_name),
                "use letters and digits, e.g. `safemig new add_orders_status`");
  }
  fs::path dir = MigrationsDirWithoutDatabase(options);
  fs::create_directories(dir);
  // Write in the convention the directory already uses, so adopted projects stay uniform.
  MigrationFormat format = MigrationFormat::kFlatPair;
  try {
    std::vector<Migration> existing = DiscoverMigrations(dir);
    if (!existing.empty()) format = existing.back().format;
  } catch (const Error& e) {
    // A half-written migration (say, the one the last `new` created) must not stop the
    // next `new`; the problem is still reported by every command that applies them.
    console.Warning(fmt::format("{} (writing a flat up/down pair)", e.what()));
  }
  std::string version = UnusedVersion(dir);
  std::vector<fs::path> written;
  switch (format) {
    case MigrationFormat::kFlatPair:
    case MigrationFormat::kFolderPair: {
      fs::path up, down;
      if (format == MigrationFormat::kFolderPair) {
        fs::path folder = dir / (version + "_" + name);
        fs::create_directories(folder);
        up = folder / "up.sql";
        down = folder / "down.sql";
      } else {
        up = dir / (version + "_" + name + ".up.sql");
        down = dir / (version + "_" + name + ".down.sql");
      }
      WriteNewFile(up, "-- " + name + ": what this changes and why.\n");
      WriteNewFile(down, "-- Undo " + name + " exactly (or mark the up -- safemig:irreversible).\n");
      written = {up, down};
      break;
    }
    case MigrationFormat::kDbmate: {
      fs::path file = dir / (version + "_" + name + ".sql");
      WriteNewFile(file, "-- migrate:up\n\n-- migrate:down\n\n");
      written = {file};
      break;
    }
    case MigrationFormat::kGoose: {
      fs::path file = dir / (version + "_" + name + ".sql");
      WriteNewFile(file, "-- +goose Up\n\n-- +goose Down\n\n");
      written = {file};
      break;
    }
    case MigrationFormat::kFlyway: {
      fs::path up = dir / ("V" + version + "__" + name + ".sql");
      fs::path undo = dir / ("U" + version + "__" + name + ".sql");
      WriteNewFile(up, "-- " + name + ": what this changes and why.\n");
      WriteNewFile(undo, "-- Undo " + name + " exactly.\n");
      written = {up, undo};
      break;
    }
  }
  if (console.json()) {
    nlohmann::json files = nlohmann::json::array();
    for (const fs::path& p : written) files.push_back(p.string());
    console.Json({{"command", "new"}, {"ok", true}, {"version", version}, {"name", name},
                  {"format", FormatName(format)}, {"files", files}});
    return;
  }
  for (const fs::path& p : written) console.Line(fmt::format("Created {}", p.string()));
}

}  // namespace

void SetupProjectCommands(CLI::App& app, GlobalOptions& options, int& /*exit_code*/) {
  app.add_subcommand("init", "write safemig.toml and create the migrations directory")
      ->callback([&options] { RunInit(options); });
  auto name = std::make_shared<std::string>();
  auto* create = app.add_subcommand("new", "create a timestamped up/down migration pair");
  create->add_option("name", *name, "what the migration does, e.g. add_orders_status")
      ->required();
  create->callback([&options, name] { RunNew(options, *name); });
}

}  // namespace safemig::cli
