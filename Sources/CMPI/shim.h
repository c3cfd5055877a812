#ifndef DANN_CMPI_SHIM_H
#define DANN_CMPI_SHIM_H
#include <mpi.h>
/* Open MPI's handles are macros over addresses of globals, which Swift cannot import. */
static inline MPI_Comm dann_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Comm dann_mpi_comm_null(void) { return MPI_COMM_NULL; }
static inline MPI_Datatype dann_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype dann_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype dann_mpi_int64(void) { return MPI_INT64_T; }
static inline MPI_Datatype dann_mpi_uint8(void) { return MPI_UINT8_T; }
static inline MPI_Datatype dann_mpi_uint16(void) { return MPI_UINT16_T; }
static inline MPI_Datatype dann_mpi_char(void) { return MPI_CHAR; }
static inline MPI_Datatype dann_mpi_byte(void) { return MPI_BYTE; }
static inline MPI_Op dann_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Op dann_mpi_max(void) { return MPI_MAX; }
static inline MPI_Op dann_mpi_min(void) { return MPI_MIN; }
static inline MPI_Op dann_mpi_op_null(void) { return MPI_OP_NULL; }
static inline void *dann_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline MPI_Request dann_mpi_request_null(void) { return MPI_REQUEST_NULL; }
static inline MPI_Status *dann_mpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline MPI_Status *dann_mpi_statuses_ignore(void) { return MPI_STATUSES_IGNORE; }
static inline MPI_Info dann_mpi_info_null(void) { return MPI_INFO_NULL; }
static inline int dann_mpi_comm_type_shared(void) { return MPI_COMM_TYPE_SHARED; }
static inline int dann_mpi_thread_funneled(void) { return MPI_THREAD_FUNNELED; }
static inline int dann_mpi_success(void) { return MPI_SUCCESS; }
static inline int dann_mpi_max_processor_name(void) { return MPI_MAX_PROCESSOR_NAME; }
#endif
