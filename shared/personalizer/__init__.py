"""The domain of offerloop's Azure Personalizer-compatible API (REST 2022-09-01-preview, v1.0, v1.1-preview).

Plain Python, no Azure SDK: request models and their validation (`requests`), Personalizer's
error bodies (`errors`), feature objects (`features`), ranking with exploration (`ranking`)
and the loop's stored service configuration and learning policy (`configuration`). The HTTP
functions decode a request, call these, and log what they return.
"""
