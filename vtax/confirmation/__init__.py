"""The confirmation form (业务办理服务确认单): business data, validation, versions."""
