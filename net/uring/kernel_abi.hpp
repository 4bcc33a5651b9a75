// io_uring ABI newer than liburing 2.3's headers (Debian 12). The values are the kernel's
// (include/uapi/linux/io_uring.h); every use checks that the running kernel offers the feature.
#pragma once

#include <cstdint>

namespace rs::net::uring::abi {

// io_uring_params.features
inline constexpr std::uint32_t kFeatRecvSendBundle = 1U << 14;  // Linux 6.10
inline constexpr std::uint32_t kFeatMinTimeout = 1U << 15;      // Linux 6.12

// sqe->ioprio of send and receive operations
inline constexpr std::uint16_t kSendZcReportUsage = 1U << 3;  // Linux 6.2
inline constexpr std::uint16_t kRecvSendBundle = 1U << 4;     // Linux 6.10

// io_uring_buf_reg.flags (the field liburing 2.3 calls pad)
inline constexpr std::uint16_t kBufRingIncremental = 2;  // IOU_PBUF_RING_INC, Linux 6.12

// A multishot receive's limit on the bytes it reads before it ends (then the connection arms it
// again) goes in sqe->optlen, which liburing 2.3 knows by the name of the field it shares:
// file_index. Kernels that do not know the limit refuse the receive with EINVAL.

// cqe->flags: the buffer named by this completion stays at the head of an incremental ring
inline constexpr std::uint32_t kCqeBufMore = 1U << 4;

// cqe->res of a SEND_ZC notification with kSendZcReportUsage: the kernel copied after all
inline constexpr std::uint32_t kNotifUsageZcCopied = 1U << 31;

}  // namespace rs::net::uring::abi
