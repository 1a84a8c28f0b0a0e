#include "vfplane/base/json_keys.h"

#include <algorithm>
#include <cctype>

namespace vfplane {

std::string asciiLower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

const nlohmann::json* findGoKey(const nlohmann::json& obj, std::string_view key,
                                std::string* matchedKey) {
  if (!obj.is_object()) return nullptr;
  auto found = obj.find(std::string(key));
  if (found == obj.end()) {
    std::string want = asciiLower(key);
    for (auto it = obj.begin(); it != obj.end(); ++it) {
      if (asciiLower(it.key()) == want) {
        found = it;
        break;
      }
    }
    if (found == obj.end()) return nullptr;
  }
  if (matchedKey != nullptr) *matchedKey = found.key();
  return &*found;
}

}  // namespace vfplane
