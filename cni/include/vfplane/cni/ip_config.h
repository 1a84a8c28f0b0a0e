// Putting an IPAM result on a link inside the pod, and checking that it is still there: the part of
// every interface plugin that comes after the link exists.
#pragma once

#include "vfplane/cni/spec.h"
#include "vfplane/netlink/rtnl.h"

namespace vfplane::cni {

// Adds the result's addresses that belong to interface `resultIndex` (or to none) to link ifindex,
// then its routes through that link. A route without "gw" uses the gateway of the first address
// of its family, as the reference plugins do; without one it is on-link. Errors are code 5 with
// the address or route named.
CniExpected<void> configureIps(netlink::Client& pod, int ifindex, const NetResult& result,
                               int resultIndex);

// Code 100 naming the first address of the result that link ifindex lacks.
CniExpected<void> checkIps(netlink::Client& pod, int ifindex, const NetResult& result,
                           int resultIndex);

}  // namespace vfplane::cni
