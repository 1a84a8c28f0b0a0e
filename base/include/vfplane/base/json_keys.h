// Reading configs written for Go projects: Go's encoding/json matches object keys to struct fields
// case-insensitively (an exact match wins), so configs in the field use "VLAN", "DeviceID", ...
// vfplane's drop-in parsers match the same way.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace vfplane {

std::string asciiLower(std::string_view s);

// The value of `key` in obj as Go would pick it, or nullptr (also when obj is not an object).
// When matchedKey is given, it receives the key as spelled in the object.
const nlohmann::json* findGoKey(const nlohmann::json& obj, std::string_view key,
                                std::string* matchedKey = nullptr);

}  // namespace vfplane
