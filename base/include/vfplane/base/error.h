// Errors on vfplane's control plane are values, not exceptions.
//
// An Error carries a message that reads as a chain of context, outermost first
// ("discover 0000:3b:00.0: read /sys/.../numa_node: Permission denied"), and the errno of the
// failing call when there was one, so that callers can branch on ENOENT or EPERM without parsing
// text. Each layer that passes an error up adds what it was doing with withContext().
//
// Its kind says whose fault it is, for the exit code and the reader: a usage error is fixed by
// changing the command line or the config (exit 2), any other is the environment's (exit 1). The
// layer that knows, a config parser or a flag check, marks it; errno says nothing about it (a
// kernel EINVAL from loading a BPF object is not a bad flag).
#pragma once

#include <cerrno>
#include <expected>
#include <string>
#include <string_view>
#include <utility>

namespace vfplane {

enum class ErrorKind {
  kRuntime,  // the environment, the kernel or a peer failed
  kUsage,    // the command line or the config is wrong
};

class Error {
 public:
  explicit Error(std::string message, int sysErrno = 0, ErrorKind kind = ErrorKind::kRuntime)
      : message_(std::move(message)), errno_(sysErrno), kind_(kind) {}

  const std::string& message() const { return message_; }
  // The errno of the failing system call, or 0 when the error did not come from one.
  int sysErrno() const { return errno_; }
  ErrorKind kind() const { return kind_; }
  bool isUsage() const { return kind_ == ErrorKind::kUsage; }

  // Prefixes "what: " to the message; the kind stays. Returns *this so it chains in returns.
  Error& withContext(std::string_view what) &;
  Error&& withContext(std::string_view what) &&;
  // Marks it a usage error.
  Error& asUsage() & {
    kind_ = ErrorKind::kUsage;
    return *this;
  }
  Error&& asUsage() && {
    kind_ = ErrorKind::kUsage;
    return std::move(*this);
  }

 private:
  std::string message_;
  int errno_;
  ErrorKind kind_;
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
// A usage error: the message names the flag, file or field to fix.
inline std::unexpected<Error> usageError(std::string message, int sysErrno = EINVAL) {
  return std::unexpected<Error>(Error(std::move(message), sysErrno, ErrorKind::kUsage));
}

}  // namespace vfplane

// Returns the error of a Result-returning expression from the enclosing function, which must
// return some Result<T>. For steps whose error needs no further context.
#define VFP_TRY(expr)                                             \
  do {                                                            \
    if (auto vfp_try_result_ = (expr); !vfp_try_result_) {        \
      return ::vfplane::fail(std::move(vfp_try_result_.error())); \
    }                                                             \
  } while (0)
