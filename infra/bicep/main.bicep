// offerloop in Azure: `azd up` provisions this and deploys the app (azure.yaml, service `api`).
// Everything the local stack emulates, wired with one user-assigned managed identity and no
// keys: storage, Event Hubs, Cosmos DB, Azure Managed Redis, Application Insights, the
// Function App on Flex Consumption. docs/deploy.md says what it costs and what it checks.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Required. Name of the azd environment: it names the resource group and seeds every resource name.')
param environmentName string

@minLength(1)
@description('Required. Region of every resource: one that offers Flex Consumption and Azure Managed Redis.')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Optional. Object ID of the developer running azd (azd passes AZURE_PRINCIPAL_ID): granted the app\'s data roles, to run the host locally against Azure. Empty: none.')
param principalId string = ''

@description('Optional. Type of principalId (User for az login, ServicePrincipal for a CI identity).')
@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param principalType string = 'User'

@description('Optional. Partitions of the activity hub (fixed once created).')
@minValue(1)
@maxValue(32)
param eventHubPartitionCount int = 4

@description('Optional. Cosmos DB capacity: serverless (pay per request) or autoscale (provisioned RU/s).')
@allowed([
  'serverless'
  'autoscale'
])
param cosmosCapacityMode string = 'serverless'

@description('Optional. Most RU/s of the database in autoscale mode.')
@minValue(1000)
param cosmosAutoscaleMaxThroughput int = 1000

@description('Optional. Azure Managed Redis SKU.')
param redisSkuName string = 'Balanced_B0'

@description('Optional. Replication of the storage account.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
param storageSkuName string = 'Standard_LRS'

@description('Optional. Most instances the Function App scales out to (a cost ceiling).')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Optional. Private networking: a virtual network the app sends its outbound traffic through, private endpoints for storage, Event Hubs, Cosmos DB and Redis, and their public access disabled. The API itself stays public.')
param privateNetworking bool = false

@secure()
@description('Optional. The key the Personalizer-compatible API requires in Ocp-Apim-Subscription-Key; empty: no key (the API is open).')
param personalizerApiKey string = ''

// The names the app uses, kept beside shared/resources.py (tests/infra compares them): blob
// containers, queues, the activity hub and its consumer groups, the Cosmos DB database and its
// containers with their partition keys and indexing policies.
var names = loadJsonContent('app-resources.json')
var blobContainers = names.blobContainers
var queues = names.queues
var eventHubName = names.eventHub.name
var consumerGroups = names.eventHub.consumerGroups
var cosmosDatabaseName = names.cosmos.database
var cosmosContainers = names.cosmos.containers

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
  app: 'offerloop'
}
var deploymentContainerName = 'app-package-${resourceToken}'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-api-${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: 'log-${resourceToken}'
    applicationInsightsName: 'appi-${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: 'st${resourceToken}'
    location: location
    tags: tags
    skuName: storageSkuName
    containers: concat(blobContainers, [deploymentContainerName])
    queues: queues
    privateNetworking: privateNetworking
    logAnalyticsResourceId: monitoring.outputs.logAnalyticsResourceId
  }
}

module eventHubs 'modules/eventhubs.bicep' = {
  name: 'eventhubs'
  scope: rg
  params: {
    name: 'evhns-${resourceToken}'
    location: location
    tags: tags
    eventHubName: eventHubName
    partitionCount: eventHubPartitionCount
    consumerGroups: consumerGroups
    privateNetworking: privateNetworking
    logAnalyticsResourceId: monitoring.outputs.logAnalyticsResourceId
  }
}

module cosmos 'modules/cosmos.bicep' = {
  name: 'cosmos'
  scope: rg
  params: {
    name: 'cosmos-${resourceToken}'
    location: location
    tags: tags
    databaseName: cosmosDatabaseName
    containers: cosmosContainers
    capacityMode: cosmosCapacityMode
    autoscaleMaxThroughput: cosmosAutoscaleMaxThroughput
    privateNetworking: privateNetworking
    logAnalyticsResourceId: monitoring.outputs.logAnalyticsResourceId
  }
}

module redis 'modules/redis.bicep' = {
  name: 'redis'
  scope: rg
  params: {
    name: 'amr-${resourceToken}'
    location: location
    tags: tags
    skuName: redisSkuName
    privateNetworking: privateNetworking
    logAnalyticsResourceId: monitoring.outputs.logAnalyticsResourceId
  }
}

module network 'modules/network.bicep' = if (privateNetworking) {
  name: 'network'
  scope: rg
  params: {
    name: 'vnet-${resourceToken}'
    location: location
    tags: tags
    logAnalyticsResourceId: monitoring.outputs.logAnalyticsResourceId
  }
}

// One private endpoint (and private DNS zone) per service sub-resource.
var privateEndpoints = [
  {
    name: 'pe-blob-${resourceToken}'
    service: 'storage'
    groupId: 'blob'
    zone: 'privatelink.blob.${environment().suffixes.storage}'
  }
  {
    name: 'pe-queue-${resourceToken}'
    service: 'storage'
    groupId: 'queue'
    zone: 'privatelink.queue.${environment().suffixes.storage}'
  }
  {
    name: 'pe-table-${resourceToken}'
    service: 'storage'
    groupId: 'table'
    zone: 'privatelink.table.${environment().suffixes.storage}'
  }
  {
    name: 'pe-evhns-${resourceToken}'
    service: 'eventHubs'
    groupId: 'namespace'
    zone: 'privatelink.servicebus.windows.net'
  }
  {
    name: 'pe-cosmos-${resourceToken}'
    service: 'cosmos'
    groupId: 'Sql'
    zone: 'privatelink.documents.azure.com'
  }
  {
    name: 'pe-amr-${resourceToken}'
    service: 'redis'
    groupId: 'redisEnterprise'
    zone: 'privatelink.redis.azure.net'
  }
]
var serviceResourceIds = {
  storage: storage.outputs.resourceId
  eventHubs: eventHubs.outputs.resourceId
  cosmos: cosmos.outputs.resourceId
  redis: redis.outputs.resourceId
}

module endpoints 'modules/private-endpoint.bicep' = [
  for endpoint in (privateNetworking ? privateEndpoints : []): {
    name: endpoint.name
    scope: rg
    params: {
      name: endpoint.name
      location: location
      tags: tags
      serviceResourceId: serviceResourceIds[endpoint.service]
      groupId: endpoint.groupId
      privateDnsZoneName: endpoint.zone
      subnetResourceId: privateNetworking ? network.outputs.privateEndpointSubnetResourceId : ''
      virtualNetworkResourceId: privateNetworking ? network.outputs.resourceId : ''
    }
  }
]

module rbac 'modules/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    appPrincipalId: identity.outputs.principalId
    userPrincipalId: principalId
    userPrincipalType: principalType
    storageAccountName: storage.outputs.name
    eventHubsNamespaceName: eventHubs.outputs.name
    eventHubName: eventHubs.outputs.eventHubName
    cosmosAccountName: cosmos.outputs.name
    redisName: redis.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
  }
}

module api 'modules/functionapp.bicep' = {
  name: 'api'
  scope: rg
  params: {
    name: 'func-api-${resourceToken}'
    planName: 'plan-${resourceToken}'
    location: location
    tags: tags
    serviceName: 'api'
    maximumInstanceCount: maximumInstanceCount
    identityResourceId: identity.outputs.resourceId
    identityClientId: identity.outputs.clientId
    personalizerApiKey: personalizerApiKey
    storageBlobEndpoint: storage.outputs.blobEndpoint
    storageQueueEndpoint: storage.outputs.queueEndpoint
    storageTableEndpoint: storage.outputs.tableEndpoint
    deploymentContainerName: deploymentContainerName
    eventHubsNamespace: eventHubs.outputs.fullyQualifiedNamespace
    eventHubName: eventHubs.outputs.eventHubName
    cosmosEndpoint: cosmos.outputs.endpoint
    cosmosDatabaseName: cosmos.outputs.databaseName
    redisHostName: redis.outputs.hostName
    redisPort: redis.outputs.port
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    virtualNetworkSubnetId: privateNetworking ? network.outputs.appSubnetResourceId : ''
    logAnalyticsResourceId: monitoring.outputs.logAnalyticsResourceId
  }
  // The host starts as soon as the app exists: its identity must already hold its roles.
  dependsOn: [
    rbac
    endpoints
  ]
}

// Outputs become azd environment values (`azd env get-values`); `python -m ops azure-settings`
// turns them into a local.settings.json. Endpoints and names only: no keys, no connection strings.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_PRIVATE_NETWORKING bool = privateNetworking
output SERVICE_API_NAME string = api.outputs.name
output SERVICE_API_URI string = api.outputs.uri
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_STORAGE_BLOB_ENDPOINT string = storage.outputs.blobEndpoint
output AZURE_STORAGE_QUEUE_ENDPOINT string = storage.outputs.queueEndpoint
output AZURE_STORAGE_TABLE_ENDPOINT string = storage.outputs.tableEndpoint
output AZURE_EVENTHUBS_NAMESPACE string = eventHubs.outputs.fullyQualifiedNamespace
output AZURE_EVENTHUB_NAME string = eventHubs.outputs.eventHubName
output AZURE_COSMOS_ENDPOINT string = cosmos.outputs.endpoint
output AZURE_COSMOS_DATABASE string = cosmos.outputs.databaseName
output AZURE_REDIS_HOST string = redis.outputs.hostName
output AZURE_REDIS_PORT int = redis.outputs.port
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.applicationInsightsName
