// Log Analytics (where every diagnostic setting sends its logs) and a workspace-based
// Application Insights that accepts Microsoft Entra ingestion only (local auth disabled).

@description('Required. Name of the Log Analytics workspace.')
param logAnalyticsName string

@description('Required. Name of the Application Insights component.')
param applicationInsightsName string

@description('Optional. Region of both.')
param location string = resourceGroup().location

@description('Optional. Tags of both.')
param tags object = {}

@description('Optional. Days the workspace keeps data (30 is included in the price).')
@minValue(30)
@maxValue(730)
param retentionInDays int = 30

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
    features: {
      disableLocalAuth: true
    }
  }
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: applicationInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    DisableLocalAuth: true
    IngestionMode: 'LogAnalytics'
  }
}

// The workspace's own audit log (queries run against it) goes to itself. Application
// Insights needs no diagnostic setting: being workspace-based, its telemetry already lands
// in this workspace, and a setting would store it twice.
resource workspaceDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: workspace
  properties: {
    workspaceId: workspace.id
    logs: [
      {
        categoryGroup: 'audit'
        enabled: true
      }
    ]
    metrics: [
      {
        category: 'AllMetrics'
        enabled: true
      }
    ]
  }
}

@description('The name of the Log Analytics workspace.')
output logAnalyticsName string = workspace.name

@description('The resource ID of the Log Analytics workspace.')
output logAnalyticsResourceId string = workspace.id

@description('The name of the Application Insights component.')
output applicationInsightsName string = applicationInsights.name

@description('The resource ID of the Application Insights component.')
output applicationInsightsResourceId string = applicationInsights.id
