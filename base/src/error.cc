#include "vfplane/base/error.h"

#include <cstring>

namespace vfplane {

Error& Error::withContext(std::string_view what) & {
  message_.insert(0, std::string(what) + ": ");
  return *this;
}

Error&& Error::withContext(std::string_view what) && {
  message_.insert(0, std::string(what) + ": ");
  return std::move(*this);
}

Error systemError(std::string_view what, int err) {
  return Error(std::string(what) + ": " + std::strerror(err), err);
}

}  // namespace vfplane
