// Errors on vfplane's control plane are values, not exceptions.
//
// An Error carries a message that reads as a chain of context, outermost first
// ("discover 0000:3b:00.0: read /sys/.../numa_node: Permission denied"), and the errno of the
// failing call when there was one, so that callers can branch on ENOENT or EPERM without parsing
// text. Each layer that passes an error up adds what it was doing with withContext().
#pragma once

#include <expected>
#include <string>
#include <string_view>
#include <utility>

namespace vfplane {

class Error {
 public:
  explicit Error(std::string message, int sysErrno = 0)
      : message_(std::move(message)), errno_(sysErrno) {}

  const std::string& message() const { return message_; }
  // The errno of the failing system call, or 0 when the error did not come from one.
  int sysErrno() const { return errno_; }

  // Prefixes "what: " to the message. Returns *this so it chains in return statements.
  Error& withContext(std::string_view what) &;
  Error&& withContext(std::string_view what) &&;

 private:
  std::string message_;
  int errno_;
};

// "what: <strerror(err)>", keeping err.
Error systemError(std::string_view what, int err);

template <class T>
using Result = std::expected<T, Error>;

// Shorthand for returning an error from a function that returns Result<T>.
inline std::unexpected<Error> fail(std::string message, int sysErrno = 0) {
  return std::unexpected<Error>(Error(std::move(message), sysErrno));
}
inline std::unexpected<Error> fail(Error error) { return std::unexpected<Error>(std::move(error)); }

}  // namespace vfplane

// Returns the error of a Result-returning expression from the enclosing function, which must
// return some Result<T>. For steps whose error needs no further context.
#define VFP_TRY(expr)                                                  \
  do {                                                                 \
    if (auto vfp_try_result_ = (expr); !vfp_try_result_) {             \
      return ::vfplane::fail(std::move(vfp_try_result_.error()));      \
    }                                                                  \
  } while (0)
