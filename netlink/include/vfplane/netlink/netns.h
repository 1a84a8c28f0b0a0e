// Network namespaces as the CNI hands them over: a path to an nsfs file (/var/run/netns/x,
// /proc/<pid>/ns/net). A Netns holds an open descriptor, so the namespace stays alive and cannot
// be swapped under us while a plugin works in it.
#pragma once

#include <sys/types.h>

#include <string>

#include "vfplane/base/error.h"
#include "vfplane/base/fd.h"

namespace vfplane::netlink {

class Netns {
 public:
  // Opens path and checks that it is a network namespace. Errors keep the errno: ENOENT when
  // it does not exist, EINVAL when it is some other file or another kind of namespace.
  static Result<Netns> open(const std::string& path);
  // The calling thread's network namespace.
  static Result<Netns> current();

  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }
  // The same namespace, whatever path each was opened by.
  bool sameAs(const Netns& other) const { return dev_ == other.dev_ && ino_ == other.ino_; }

 private:
  Netns(Fd fd, std::string path, dev_t dev, ino_t ino)
      : fd_(std::move(fd)), path_(std::move(path)), dev_(dev), ino_(ino) {}
  Fd fd_;
  std::string path_;
  dev_t dev_;
  ino_t ino_;
};

// Moves the calling thread into a namespace and back when destroyed. Sockets opened meanwhile stay
// bound to the namespace they were opened in, which is how a plugin talks to two at once.
class NetnsEntered {
 public:
  static Result<NetnsEntered> enter(const Netns& target);
  NetnsEntered(NetnsEntered&&) = default;
  NetnsEntered& operator=(NetnsEntered&&) = delete;
  ~NetnsEntered();

 private:
  explicit NetnsEntered(Fd home) : home_(std::move(home)) {}
  Fd home_;
};

}  // namespace vfplane::netlink
