// The Function App on the Flex Consumption plan (Linux, Python), running as the one
// user-assigned identity. Its app settings are exactly what the code reads
// (shared/settings.py NAMES), with every connection identity-based.

@description('Required. Name of the Function App.')
param name string

@description('Required. Name of the Flex Consumption plan.')
param planName string

@description('Optional. Region of both.')
param location string = resourceGroup().location

@description('Optional. Tags of both (the app also gets azd-service-name).')
param tags object = {}

@description('Required. Name of the service in azure.yaml that azd deploys to this app.')
param serviceName string

@description('Optional. Python version of the Functions runtime.')
@allowed([
  '3.11'
  '3.12'
])
param pythonVersion string = '3.11'

@description('Optional. Memory of each instance (MB).')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Optional. Most instances the app scales out to (a cost ceiling).')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Required. Resource ID of the user-assigned identity the app runs as.')
param identityResourceId string

@description('Required. Client ID of that identity (the __clientId of every connection).')
param identityClientId string

@description('Required. Blob endpoint of the storage account (AzureWebJobsStorage).')
param storageBlobEndpoint string

@description('Required. Queue endpoint of the storage account.')
param storageQueueEndpoint string

@description('Required. Table endpoint of the storage account.')
param storageTableEndpoint string

@description('Required. Blob container holding the deployment package.')
param deploymentContainerName string

@description('Required. Fully qualified Event Hubs namespace.')
param eventHubsNamespace string

@description('Required. Name of the activity hub.')
param eventHubName string

@description('Required. Cosmos DB account endpoint.')
param cosmosEndpoint string

@description('Required. Cosmos DB database name.')
param cosmosDatabaseName string

@description('Required. Host name of Azure Managed Redis.')
param redisHostName string

@description('Required. TLS port of the Redis database.')
param redisPort int

@description('Optional. Seconds between reloads of the catalog into memory.')
param catalogRefreshSeconds int = 60

@description('Optional. Hours in which a category affinity halves.')
param affinityHalfLifeHours int = 72

@description('Optional. The learning loop\'s settings (README.md, Settings): exploration, rewards, retraining, apprentice mode.')
param learning object = {
  EXPLORATION_POLICY: 'epsilon-greedy'
  EXPLORATION_PERCENTAGE: '20'
  REWARD_WAIT_SECONDS: '600'
  DEFAULT_REWARD: '0'
  REWARD_AGGREGATION: 'earliest'
  RETRAIN_SCHEDULE: '0 */5 * * * *'
  RETRAIN_EVERY_IMPRESSIONS: '1000'
  TRAINING_WINDOW_DAYS: '14'
  MODEL_REFRESH_SECONDS: '30'
  APPRENTICE_MODE: 'false'
  APPRENTICE_AGREEMENT: '0.9'
  PERSONALIZER_RETRAIN_SCHEDULE: '0 * * * * *'
}

@secure()
@description('Optional. The key the Personalizer-compatible API requires in Ocp-Apim-Subscription-Key; empty: no key.')
param personalizerApiKey string = ''

@description('Required. Name of the Application Insights component (same resource group).')
param applicationInsightsName string

@description('Optional. Resource ID of the subnet for outbound traffic into the virtual network; empty: none.')
param virtualNetworkSubnetId string = ''

@description('Required. Resource ID of the Log Analytics workspace for diagnostic settings.')
param logAnalyticsResourceId string

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: Flex Consumption zone redundancy is offered in some regions only and bills always-ready instances; the default deployment is the low-cost one
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

// siteConfig.appSettings: every setting the code reads (shared/settings.py NAMES; tests/infra
// compares), and no other. Connections are identity-based: <prefix>__<endpoint> plus
// __credential and __clientId, read by the host's bindings and the app's own clients alike.
// FUNCTIONS_WORKER_RUNTIME and FUNCTIONS_EXTENSION_VERSION are no app settings on Flex
// Consumption: functionAppConfig.runtime says them.
resource site 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: the offers and events API is public by design (website and storefront call it); its data stores are the private part
  // checkov:skip=CKV_AZURE_17: browsers and the storefront call the API; they have no client certificates to present
  // checkov:skip=CKV_AZURE_212: Flex Consumption scales per function from zero; there is no fixed instance count to set
  // checkov:skip=CKV_AZURE_213: the health check setting is not available on Flex Consumption; GET /api/health reports each dependency for external probes
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': serviceName })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityResourceId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    publicNetworkAccess: 'Enabled'
    virtualNetworkSubnetId: empty(virtualNetworkSubnetId) ? null : virtualNetworkSubnetId
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      remoteDebuggingEnabled: false
      appSettings: [
        {
          name: 'AzureWebJobsStorage__blobServiceUri'
          value: storageBlobEndpoint
        }
        {
          name: 'AzureWebJobsStorage__queueServiceUri'
          value: storageQueueEndpoint
        }
        {
          name: 'AzureWebJobsStorage__tableServiceUri'
          value: storageTableEndpoint
        }
        {
          name: 'AzureWebJobsStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'AzureWebJobsStorage__clientId'
          value: identityClientId
        }
        {
          name: 'EventHubConnection__fullyQualifiedNamespace'
          value: eventHubsNamespace
        }
        {
          name: 'EventHubConnection__credential'
          value: 'managedidentity'
        }
        {
          name: 'EventHubConnection__clientId'
          value: identityClientId
        }
        {
          name: 'EVENTHUB_NAME'
          value: eventHubName
        }
        {
          name: 'CosmosDBConnection__accountEndpoint'
          value: cosmosEndpoint
        }
        {
          name: 'CosmosDBConnection__credential'
          value: 'managedidentity'
        }
        {
          name: 'CosmosDBConnection__clientId'
          value: identityClientId
        }
        {
          name: 'COSMOS_DATABASE'
          value: cosmosDatabaseName
        }
        {
          name: 'REDIS_URL'
          value: 'rediss://${redisHostName}:${redisPort}'
        }
        {
          name: 'REDIS_CLIENT_ID'
          value: identityClientId
        }
        {
          name: 'CATALOG_REFRESH_SECONDS'
          value: string(catalogRefreshSeconds)
        }
        {
          name: 'AFFINITY_HALF_LIFE_HOURS'
          value: string(affinityHalfLifeHours)
        }
        {
          name: 'EXPLORATION_POLICY'
          value: learning.EXPLORATION_POLICY
        }
        {
          name: 'EXPLORATION_PERCENTAGE'
          value: learning.EXPLORATION_PERCENTAGE
        }
        {
          name: 'REWARD_WAIT_SECONDS'
          value: learning.REWARD_WAIT_SECONDS
        }
        {
          name: 'DEFAULT_REWARD'
          value: learning.DEFAULT_REWARD
        }
        {
          name: 'REWARD_AGGREGATION'
          value: learning.REWARD_AGGREGATION
        }
        {
          name: 'RETRAIN_SCHEDULE'
          value: learning.RETRAIN_SCHEDULE
        }
        {
          name: 'RETRAIN_EVERY_IMPRESSIONS'
          value: learning.RETRAIN_EVERY_IMPRESSIONS
        }
        {
          name: 'TRAINING_WINDOW_DAYS'
          value: learning.TRAINING_WINDOW_DAYS
        }
        {
          name: 'MODEL_REFRESH_SECONDS'
          value: learning.MODEL_REFRESH_SECONDS
        }
        {
          name: 'APPRENTICE_MODE'
          value: learning.APPRENTICE_MODE
        }
        {
          name: 'APPRENTICE_AGREEMENT'
          value: learning.APPRENTICE_AGREEMENT
        }
        {
          name: 'PERSONALIZER_RETRAIN_SCHEDULE'
          value: learning.PERSONALIZER_RETRAIN_SCHEDULE
        }
        {
          name: 'PERSONALIZER_API_KEY'
          value: personalizerApiKey
        }
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: applicationInsights.properties.ConnectionString
        }
        {
          name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
          value: 'ClientId=${identityClientId};Authorization=AAD'
        }
      ]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityResourceId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: {
        name: 'python'
        version: pythonVersion
      }
    }
  }
}

resource planDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: plan
  properties: {
    workspaceId: logAnalyticsResourceId
    metrics: [
      {
        category: 'AllMetrics'
        enabled: true
      }
    ]
  }
}

resource siteDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: site
  properties: {
    workspaceId: logAnalyticsResourceId
    logs: [
      {
        categoryGroup: 'allLogs'
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

@description('The name of the Function App.')
output name string = site.name

@description('The resource ID of the Function App.')
output resourceId string = site.id

@description('The app\'s base URL.')
output uri string = 'https://${site.properties.defaultHostName}'
