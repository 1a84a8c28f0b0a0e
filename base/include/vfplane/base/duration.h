// Durations on command lines: "500ms", "30s", "5m", "1h". Shared by the daemons' flags.
#pragma once

#include <charconv>
#include <chrono>
#include <optional>
#include <string_view>

namespace vfplane {

// nullopt for anything but a positive integer with one of those units.
inline std::optional<std::chrono::milliseconds> parseDuration(std::string_view s) {
  long long n = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || n <= 0) return std::nullopt;
  std::string_view unit(end, static_cast<size_t>(s.data() + s.size() - end));
  if (unit == "ms") return std::chrono::milliseconds(n);
  if (unit == "s") return std::chrono::seconds(n);
  if (unit == "m") return std::chrono::minutes(n);
  if (unit == "h") return std::chrono::hours(n);
  return std::nullopt;
}

}  // namespace vfplane
