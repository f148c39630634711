// Small helpers for the JSON documents and journal details the engine writes: the same
// null conventions everywhere (docs/json-output.md). Header-only; thread-safe.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace safemig {

// null for "", else the text.
inline nlohmann::json OrNull(const std::string& text) {
  return text.empty() ? nlohmann::json(nullptr) : nlohmann::json(text);
}

// null when unknown, else milliseconds as a number.
inline nlohmann::json MsOrNull(const std::optional<std::chrono::milliseconds>& value) {
  return value ? nlohmann::json(value->count()) : nlohmann::json(nullptr);
}

// A journal row's details as an object: {} when the text is damaged or not an object.
inline nlohmann::json DetailsObject(const std::string& text) {
  nlohmann::json json = nlohmann::json::parse(text, nullptr, false);
  return json.is_object() ? json : nlohmann::json::object();
}

}  // namespace safemig
