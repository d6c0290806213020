// The run's report as the JSON the journal keeps in the run's summary: `forklift report`
// renders a run from it alone. Pure functions; thread-safe.
#ifndef FORKLIFT_FLOW_REPORT_JSON_H_
#define FORKLIFT_FLOW_REPORT_JSON_H_

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "flow/flow_report.h"
#include "forklift/result.h"

namespace forklift::flow {

// `r` as JSON; hashes[i] is task i's command hash (what --resume compares), "" past its end.
nlohmann::json ReportToJson(const ReportData& r, const std::vector<std::string>& hashes);

// The report ReportToJson wrote. A missing field (a summary an earlier version wrote) takes
// its default; a field of another type (a damaged journal) is DataLoss naming the JSON
// error. Never throws.
Result<ReportData> ReportFromJson(const nlohmann::json& j);

}  // namespace forklift::flow

#endif  // FORKLIFT_FLOW_REPORT_JSON_H_
